/* kiln graph MODEL|ENGINE: the graph as Graphviz DOT, after optimization
 * (each fused layer labelled with the nodes it absorbed, its provider and
 * tactic) or, with --before, as the model gives it. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"

static const kc_opt kc_graph_opts[] = {
    {"-o", KC_OPT_REQUIRED, "FILE.dot", "write the DOT text to FILE (default: stdout)"},
    {"--output", KC_OPT_REQUIRED, "FILE.dot", "same as -o"},
    {"--before", KC_OPT_NONE, NULL, "the graph before optimization (MODEL only)"},
    {"--threads", KC_OPT_REQUIRED, "N", "CPU threads of the build (MODEL only)"},
    {NULL, KC_OPT_NONE, NULL, NULL}};

void kc_graph_help(FILE *f) {
    fputs("usage: kiln graph MODEL|ENGINE [-o FILE.dot] [--before]\n"
          "\n"
          "Write the graph as Graphviz DOT: for a model, the graph after\n"
          "optimization with the default build options (or before it, with\n"
          "--before); for an engine file, its optimized graph.  Each fused layer is\n"
          "labelled with the nodes it absorbed, its provider and its tactic.\n"
          "Render it with Graphviz: dot -Tsvg FILE.dot -o FILE.svg\n"
          "\n"
          "flags:\n",
          f);
    kc_opts_help(f, kc_graph_opts, false);
    fputs("  --help                         show this help\n"
          "\n"
          "exit status: 0 ok, 1 the model could not be loaded or built, 2 usage error\n",
          f);
}

int kc_cmd_graph(int argc, char **argv) {
    const char *cmd = "graph";
    const char *path = NULL, *out = NULL, *threads_s = NULL;
    bool before = false;
    int code = KC_EXIT_OK;
    kc_args a;
    const kc_opt *o;
    const char *v;
    char word[256];
    kc_arg_kind kind;
    kc_args_init(&a, argc, argv, kc_graph_opts);
    while ((kind = kc_args_next(&a, &o, &v, word, sizeof word)) != KC_ARG_END) {
        if (kind == KC_ARG_HELP) {
            kc_graph_help(stdout);
            return kc_finish_stdout(KC_EXIT_OK);
        }
        if (kind == KC_ARG_UNKNOWN || kind == KC_ARG_MISSING_VALUE || kind == KC_ARG_UNEXPECTED_VALUE)
            return kc_args_usage_error(kind, kc_graph_opts, o, word, cmd, "graph");
        if (kind == KC_ARG_POSITIONAL) {
            if (path)
                return kc_fail(KC_EXIT_USAGE, cmd, "unexpected argument '%s' after MODEL '%s' (one model at a time)", v,
                               path);
            path = v;
            continue;
        }
        if (!strcmp(o->name, "-o") || !strcmp(o->name, "--output")) out = v;
        else if (!strcmp(o->name, "--before")) before = true;
        else if (!strcmp(o->name, "--threads")) threads_s = v;
    }
    if (!path)
        return kc_fail(KC_EXIT_USAGE, cmd, "missing MODEL argument (usage: kiln graph MODEL|ENGINE [-o FILE.dot]; "
                       "try 'kiln help graph')");
    long long threads = 0;
    if (threads_s && !kc_parse_int(cmd, "--threads", threads_s, 0, 4096, &threads, &code)) return code;
    kc_loaded l;
    kiln_build_options *bo = NULL;
    kiln_engine *built = NULL;
    char *dot = NULL;
    if (!kc_load_model_or_engine(cmd, path, &l, &code)) goto done;
    const kiln_engine *engine = l.engine;
    if (engine && (before || threads)) {
        code = kc_fail(KC_EXIT_USAGE, cmd, "%s applies to a model: an engine file holds only the optimized graph",
                       before ? "--before" : "--threads");
        goto done;
    }
    if (!engine) {
        kc_build_cfg cfg = {.threads = threads, .no_optimize = before};
        if (!kc_build_options_make(cmd, &cfg, l.model, &bo, &code)) goto done;
        if (kiln_build(l.model, bo, &built) != KILN_OK) {
            code = kc_fail_kiln(KC_EXIT_MODEL, cmd, path);
            goto done;
        }
        engine = built;
    }
    if (kiln_engine_graph_dot(engine, &dot) != KILN_OK) {
        code = kc_fail(KC_EXIT_MODEL, cmd, "%s", kiln_last_error());
        goto done;
    }
    if (out && strcmp(out, "-") != 0) {
        FILE *f = fopen(out, "w");
        if (!f) {
            code = kc_fail(KC_EXIT_MODEL, cmd, "cannot create '%s': %s", out, strerror(errno));
            goto done;
        }
        fputs(dot, f);
        if (ferror(f) | (fclose(f) != 0)) {
            code = kc_fail(KC_EXIT_MODEL, cmd, "cannot write '%s': %s", out, strerror(errno));
            goto done;
        }
    } else {
        fputs(dot, stdout);
    }
done:
    kiln_free(dot);
    kiln_engine_destroy(built);
    kiln_build_options_destroy(bo);
    kc_loaded_free(&l);
    return kc_finish_stdout(code);
}
