/* kiln check MODEL: list the model's problems; exit 1 on ONNX rule errors. */
#include <string.h>

#include "cli.h"
#include "json.h"

static const char *const kc_severity_names[] = {"error", "warning", "unsupported"};

/* Label printed before a problem of severity `sev` in human output. */
static const char *kc_severity_label(kiln_check_severity sev) {
    switch (sev) {
    case KILN_CHECK_ERROR: return "error";
    case KILN_CHECK_WARNING: return "warning";
    case KILN_CHECK_UNSUPPORTED: return "unsupported";
    }
    return "problem";
}

/* JSON for a model that could not be loaded. */
static void kc_check_json_load_error(const char *path, const kc_loaded *l) {
    kj_writer w;
    kj_init(&w, stdout);
    kj_object_begin(&w);
    kj_key(&w, "file");
    kj_string(&w, strcmp(path, "-") == 0 ? "<stdin>" : path);
    kj_key(&w, "loaded");
    kj_bool(&w, false);
    kj_key(&w, "valid");
    kj_bool(&w, false);
    kj_key(&w, "status");
    kj_string(&w, kiln_status_name(l->status));
    kj_key(&w, "error");
    kj_string(&w, l->error);
    kj_object_end(&w);
    kj_finish(&w);
}

/* Print "N errors" with the plural right into buf at *pos. */
static void kc_count_add(char *buf, size_t size, size_t *pos, size_t n, const char *one,
                         const char *many) {
    if (n == 0 || *pos >= size) return;
    int w = snprintf(buf + *pos, size - *pos, "%s%zu %s", *pos ? ", " : "", n, n == 1 ? one : many);
    if (w > 0) *pos += (size_t)w;
}

int kc_cmd_check(int argc, char **argv) {
    bool json = false, strict = false;
    const kc_flag flags[] = {
        {"--json", &json, NULL, NULL}, {"--strict", &strict, NULL, NULL}, {NULL, NULL, NULL, NULL}};
    const char *path;
    int code;
    if (!kc_parse_args(argc, argv, flags, &path, &code)) return code;
    kc_loaded l;
    if (!kc_load_model("check", path, &l, &code)) {
        if (json) kc_check_json_load_error(path, &l);
        return kc_finish_stdout(code);
    }
    kiln_check *chk = NULL;
    if (kiln_model_check(l.model, &chk) != KILN_OK) {
        code = kc_fail(KC_EXIT_MODEL, "check", "%s: %s", path, kiln_last_error());
        kc_loaded_free(&l);
        return code;
    }
    size_t n = 0, counts[3] = {0, 0, 0};
    kiln_check_count(chk, &n);
    for (size_t i = 0; i < n; i++) {
        kiln_check_severity sev;
        int64_t node;
        const char *msg;
        if (kiln_check_problem(chk, i, &sev, &node, &msg) == KILN_OK && (unsigned)sev < 3) counts[sev]++;
    }
    bool valid = counts[KILN_CHECK_ERROR] == 0;
    bool pass = valid && (!strict || (counts[KILN_CHECK_WARNING] == 0 && counts[KILN_CHECK_UNSUPPORTED] == 0));
    char name[1024];
    const char *shown = strcmp(path, "-") == 0 ? "<stdin>" : path;
    kc_fmt_name(shown, strlen(shown), name, sizeof name);

    if (json) {
        kj_writer w;
        kj_init(&w, stdout);
        kj_object_begin(&w);
        kj_key(&w, "file");
        kj_string(&w, shown);
        kj_key(&w, "loaded");
        kj_bool(&w, true);
        kj_key(&w, "valid");
        kj_bool(&w, valid);
        kj_key(&w, "strict");
        kj_bool(&w, strict);
        kj_key(&w, "pass");
        kj_bool(&w, pass);
        kj_key(&w, "errors");
        kj_uint(&w, counts[KILN_CHECK_ERROR]);
        kj_key(&w, "warnings");
        kj_uint(&w, counts[KILN_CHECK_WARNING]);
        kj_key(&w, "unsupported");
        kj_uint(&w, counts[KILN_CHECK_UNSUPPORTED]);
        kj_key(&w, "problems");
        kj_array_begin(&w);
        for (size_t i = 0; i < n; i++) {
            kiln_check_severity sev;
            int64_t node;
            const char *msg;
            if (kiln_check_problem(chk, i, &sev, &node, &msg) != KILN_OK) continue;
            kj_object_begin(&w);
            kj_key(&w, "severity");
            kj_string(&w, (unsigned)sev < 3 ? kc_severity_names[sev] : "unknown");
            kj_key(&w, "node");
            if (node >= 0) kj_int(&w, node);
            else kj_null(&w);
            kj_key(&w, "message");
            kj_string(&w, msg);
            kj_object_end(&w);
        }
        kj_array_end(&w);
        kj_object_end(&w);
        kj_finish(&w);
    } else {
        /* Errors first, then warnings, then what kiln cannot run yet. */
        for (int pass_sev = 0; pass_sev < 3; pass_sev++)
            for (size_t i = 0; i < n; i++) {
                kiln_check_severity sev;
                int64_t node;
                const char *msg;
                if (kiln_check_problem(chk, i, &sev, &node, &msg) != KILN_OK || (int)sev != pass_sev)
                    continue;
                char line[4096];
                printf("%s: %s\n", kc_severity_label(sev), kc_fmt_name(msg, strlen(msg), line, sizeof line));
            }
        char summary[256];
        size_t pos = 0;
        summary[0] = 0;
        kc_count_add(summary, sizeof summary, &pos, counts[KILN_CHECK_ERROR], "error", "errors");
        kc_count_add(summary, sizeof summary, &pos, counts[KILN_CHECK_WARNING], "warning", "warnings");
        kc_count_add(summary, sizeof summary, &pos, counts[KILN_CHECK_UNSUPPORTED],
                     "operator kiln cannot run yet", "operators kiln cannot run yet");
        if (!valid) printf("%s: invalid (%s)\n", name, summary);
        else if (!pass) printf("%s: valid ONNX, but fails --strict (%s)\n", name, summary);
        else if (pos) printf("%s: valid (%s)\n", name, summary);
        else printf("%s: valid\n", name);
    }
    kiln_check_destroy(chk);
    kc_loaded_free(&l);
    return kc_finish_stdout(pass ? KC_EXIT_OK : KC_EXIT_MODEL);
}
