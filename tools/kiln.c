/* kiln — command-line front end: subcommand dispatch, help and version. */
#include <string.h>

#include "cli.h"

typedef struct kc_command {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
    const char *help;
} kc_command;

static const kc_command kc_commands[] = {
    {"info", kc_cmd_info, "describe a model: inputs, outputs, operators, parameters, MACs",
     "usage: kiln info MODEL [--json] [--shapes]\n"
     "\n"
     "Describe an ONNX model: IR version, producer, opset imports, metadata,\n"
     "graph inputs and outputs with their types (symbolic dims by name), an\n"
     "operator histogram (subgraph nodes included), parameter count and bytes,\n"
     "external data files, and the multiply-accumulate count (MACs) of Conv,\n"
     "ConvTranspose, Gemm and MatMul-like nodes at the declared shapes, with\n"
     "symbolic dimensions taken as 1.\n"
     "\n"
     "MODEL is a path to a .onnx file, or - to read the model from stdin.\n"
     "\n"
     "flags:\n"
     "  --json      write machine-readable JSON to stdout\n"
     "  --shapes    also list every tensor of the main graph with its inferred type\n"
     "  --verbose   same as --shapes\n"
     "  --help      show this help\n"
     "\n"
     "exit status: 0 ok, 1 the model could not be loaded, 2 usage error\n"},
    {"check", kc_cmd_check, "check a model against the ONNX rules and list what kiln cannot run yet",
     "usage: kiln check MODEL [--json] [--strict]\n"
     "\n"
     "Check an ONNX model against the ONNX rules (what onnx.checker checks, and\n"
     "more).  Prints 'MODEL: valid' when there are no errors; otherwise every\n"
     "problem, one per line.  Warnings and the operators kiln cannot run yet\n"
     "(domain, op, opset) are printed too, but only fail the check with --strict.\n"
     "\n"
     "MODEL is a path to a .onnx file, or - to read the model from stdin.\n"
     "\n"
     "flags:\n"
     "  --json      write machine-readable JSON to stdout\n"
     "  --strict    also fail on warnings and unsupported operators\n"
     "  --help      show this help\n"
     "\n"
     "exit status: 0 valid, 1 invalid or could not be loaded, 2 usage error\n"},
    {"help", NULL, "show help for a subcommand",
     "usage: kiln help [SUBCOMMAND]\n"
     "\n"
     "Show the general help, or the help of SUBCOMMAND.\n"},
};

/* The command named `name`, or NULL. */
static const kc_command *kc_find(const char *name) {
    for (size_t i = 0; i < sizeof kc_commands / sizeof kc_commands[0]; i++)
        if (strcmp(kc_commands[i].name, name) == 0) return &kc_commands[i];
    return NULL;
}

/* General usage text. */
static void kc_usage(FILE *f) {
    fprintf(f, "kiln %s — inference optimizer and runtime for ONNX models\n\n", kiln_version());
    fprintf(f, "usage: kiln SUBCOMMAND [FLAGS] MODEL\n       kiln --version | --help\n\nsubcommands:\n");
    for (size_t i = 0; i < sizeof kc_commands / sizeof kc_commands[0]; i++)
        fprintf(f, "  %-8s %s\n", kc_commands[i].name, kc_commands[i].summary);
    fprintf(f, "\nRun 'kiln help SUBCOMMAND' for the flags of a subcommand.\n");
}

bool kc_help(FILE *f, const char *name) {
    const kc_command *c = kc_find(name);
    if (!c) return false;
    fputs(c->help, f);
    return true;
}

/* Error for an unknown subcommand, with a suggestion when one is close. */
static int kc_unknown_command(const char *context, const char *name) {
    const char *names[sizeof kc_commands / sizeof kc_commands[0]];
    for (size_t i = 0; i < sizeof kc_commands / sizeof kc_commands[0]; i++) names[i] = kc_commands[i].name;
    const char *hint = kc_suggest(name, names, sizeof names / sizeof names[0]);
    if (hint)
        return kc_fail(KC_EXIT_USAGE, context, "unknown subcommand '%s' (did you mean '%s'?)", name, hint);
    return kc_fail(KC_EXIT_USAGE, context, "unknown subcommand '%s' (try 'kiln --help')", name);
}

/* kiln help [SUBCOMMAND] */
static int kc_cmd_help(int argc, char **argv) {
    if (argc > 2) return kc_fail(KC_EXIT_USAGE, "help", "unexpected argument '%s'", argv[2]);
    if (argc < 2) {
        kc_usage(stdout);
        return kc_finish_stdout(KC_EXIT_OK);
    }
    if (argv[1][0] == '-' && strcmp(argv[1], "--help") != 0 && strcmp(argv[1], "-h") != 0)
        return kc_fail(KC_EXIT_USAGE, "help", "unknown flag '%s'", argv[1]);
    if (argv[1][0] == '-') return kc_help(stdout, "help") ? kc_finish_stdout(KC_EXIT_OK) : 1;
    if (!kc_help(stdout, argv[1])) return kc_unknown_command("help", argv[1]);
    return kc_finish_stdout(KC_EXIT_OK);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        return kc_fail(KC_EXIT_USAGE, NULL, "missing subcommand (usage: kiln SUBCOMMAND MODEL; try 'kiln --help')");
    }
    const char *sub = argv[1];
    if (strcmp(sub, "--version") == 0 || strcmp(sub, "-V") == 0) {
        if (argc > 2) return kc_fail(KC_EXIT_USAGE, NULL, "unexpected argument '%s' after --version", argv[2]);
        printf("kiln %s\n", kiln_version());
        return kc_finish_stdout(KC_EXIT_OK);
    }
    if (strcmp(sub, "--help") == 0 || strcmp(sub, "-h") == 0) {
        kc_usage(stdout);
        return kc_finish_stdout(KC_EXIT_OK);
    }
    if (sub[0] == '-') {
        static const char *const globals[] = {"--help", "--version"};
        const char *hint = kc_suggest(sub, globals, 2);
        if (hint) return kc_fail(KC_EXIT_USAGE, NULL, "unknown flag '%s' (did you mean '%s'?)", sub, hint);
        return kc_fail(KC_EXIT_USAGE, NULL, "unknown flag '%s' (flags go after the subcommand; try 'kiln --help')",
                       sub);
    }
    if (strcmp(sub, "help") == 0) return kc_cmd_help(argc - 1, argv + 1);
    const kc_command *c = kc_find(sub);
    size_t len = strlen(sub);
    if (!c && len > 5 && strcmp(sub + len - 5, ".onnx") == 0)
        return kc_fail(KC_EXIT_USAGE, NULL, "'%s' is not a subcommand; to describe a model run 'kiln info %s'",
                       sub, sub);
    if (!c || !c->run) return kc_unknown_command(NULL, sub);
    return c->run(argc - 1, argv + 1);
}
