/* In-order flag parsing, profile shape specs and build options shared by
 * kiln build, kiln trtexec, kiln profile and kiln graph. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "args.h"
#include "tensors.h"

/* ---- in-order parsing --------------------------------------------------------- */

void kc_args_init(kc_args *a, int argc, char **argv, const kc_opt *opts) {
    memset(a, 0, sizeof *a);
    a->argc = argc;
    a->argv = argv;
    a->i = 1;
    a->opts = opts;
}

/* The option named exactly by the first len bytes of s, or NULL. */
static const kc_opt *kc_opt_find(const kc_opt *opts, const char *s, size_t len) {
    for (const kc_opt *o = opts; o->name; o++)
        if (strlen(o->name) == len && strncmp(o->name, s, len) == 0) return o;
    return NULL;
}

kc_arg_kind kc_args_next(kc_args *a, const kc_opt **opt, const char **value, char *word, size_t wsize) {
    *opt = NULL;
    *value = NULL;
    if (wsize) word[0] = 0;
    while (a->i < a->argc) {
        const char *s = a->argv[a->i++];
        if (!a->flags_done && strcmp(s, "--") == 0) {
            a->flags_done = true;
            continue;
        }
        if (a->flags_done || s[0] != '-' || s[1] == 0) {
            *value = s;
            return KC_ARG_POSITIONAL;
        }
        if (strcmp(s, "--help") == 0 || strcmp(s, "-h") == 0) return KC_ARG_HELP;
        const char *eq = s[1] == '-' ? strchr(s, '=') : NULL;
        const kc_opt *o = kc_opt_find(a->opts, s, strlen(s));
        if (o) eq = NULL;
        else if (eq) o = kc_opt_find(a->opts, s, (size_t)(eq - s));
        if (!o) {
            snprintf(word, wsize, "%.*s", (int)(eq ? (size_t)(eq - s) : strlen(s)), s);
            return KC_ARG_UNKNOWN;
        }
        *opt = o;
        if (o->value == KC_OPT_NONE) {
            if (eq) return KC_ARG_UNEXPECTED_VALUE;
            return KC_ARG_FLAG;
        }
        if (eq) {
            *value = eq + 1;
            if (!**value && o->value == KC_OPT_REQUIRED) return KC_ARG_MISSING_VALUE;
            return KC_ARG_FLAG;
        }
        if (o->value == KC_OPT_OPTIONAL) return KC_ARG_FLAG;
        if (a->i >= a->argc) return KC_ARG_MISSING_VALUE;
        *value = a->argv[a->i++];
        return KC_ARG_FLAG;
    }
    return KC_ARG_END;
}

/* Levenshtein distance of a and b (strings up to 63 bytes; 99 beyond). */
static size_t kc_edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 99;
    size_t row[64];
    for (size_t j = 0; j <= lb; j++) row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t best = diag + (a[i - 1] != b[j - 1]);
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

int kc_args_usage_error(kc_arg_kind kind, const kc_opt *opts, const kc_opt *o, const char *word, const char *cmd,
                        const char *help) {
    if (kind == KC_ARG_UNKNOWN) {
        const char *hint = kc_opts_suggest(opts, word);
        if (hint) return kc_fail(KC_EXIT_USAGE, cmd, "unknown flag '%s' (did you mean '%s'?)", word, hint);
        return kc_fail(KC_EXIT_USAGE, cmd, "unknown flag '%s' (try 'kiln help %s')", word, help);
    }
    if (kind == KC_ARG_MISSING_VALUE)
        return kc_fail(KC_EXIT_USAGE, cmd, "flag '%s' needs a value (try 'kiln help %s')", o->name, help);
    return kc_fail(KC_EXIT_USAGE, cmd, "flag '%s' takes no value (try 'kiln help %s')", o->name, help);
}

const char *kc_opts_suggest(const kc_opt *opts, const char *word) {
    size_t limit = strlen(word) / 3;
    if (limit < 2) limit = 2;
    const char *best = NULL;
    size_t best_d = limit + 1;
    for (const kc_opt *o = opts; o->name; o++) {
        size_t d = kc_edit_distance(word, o->name);
        /* Case-insensitive spellings (--minshapes) count as one edit. */
        if (d > 1 && strlen(word) == strlen(o->name) && strcasecmp(word, o->name) == 0) d = 1;
        if (d < best_d) {
            best_d = d;
            best = o->name;
        }
    }
    return best;
}

void kc_opts_help(FILE *f, const kc_opt *opts, bool eq_syntax) {
    for (const kc_opt *o = opts; o->name; o++) {
        char left[96];
        if (o->value == KC_OPT_NONE || !o->arg) snprintf(left, sizeof left, "%s", o->name);
        else if (o->value == KC_OPT_OPTIONAL) snprintf(left, sizeof left, "%s[=%s]", o->name, o->arg);
        else snprintf(left, sizeof left, "%s%s%s", o->name, eq_syntax ? "=" : " ", o->arg);
        if (strlen(left) < 30) fprintf(f, "  %-30s %s\n", left, o->help);
        else fprintf(f, "  %s\n  %-30s %s\n", left, "", o->help);
    }
}

/* ---- shapes -------------------------------------------------------------------- */

bool kc_shape_spec_parse(const char *cmd, const char *flag, const char *spec, const kiln_model *m,
                         kc_shape_item *items, size_t max_items, size_t *n_items, int *exit_code) {
    *n_items = 0;
    kc_io *io = NULL;
    size_t n_io = 0;
    if (!kc_model_io(m, false, &io, &n_io)) {
        *exit_code = kc_fail(KC_EXIT_MODEL, cmd, "cannot read the model's inputs: %s", kiln_last_error());
        return false;
    }
    bool ok = false;
    for (const char *item = spec; *item;) {
        const char *end = strchr(item, ',');
        size_t len = end ? (size_t)(end - item) : strlen(item);
        const char *colon = NULL;
        for (const char *c = item; c < item + len; c++)
            if (*c == ':') colon = c;
        if (!colon || colon == item) {
            *exit_code = kc_fail(KC_EXIT_USAGE, cmd, "%s: '%.*s' is not NAME:DIMS (e.g. %s:1x3x224x224)", flag,
                                 (int)len, item, n_io ? io[0].name : "input");
            goto done;
        }
        size_t nlen = (size_t)(colon - item), idx = n_io;
        /* trtexec allows quoting names with single quotes: 'input':1x3. */
        const char *name = item;
        if (nlen >= 2 && name[0] == '\'' && name[nlen - 1] == '\'') name++, nlen -= 2;
        for (size_t i = 0; i < n_io; i++)
            if (strlen(io[i].name) == nlen && strncmp(io[i].name, name, nlen) == 0) idx = i;
        if (idx == n_io) {
            char names[1024] = "", want[256];
            const char *cands[64];
            size_t nc = 0, pos = 0;
            for (size_t i = 0; i < n_io; i++) {
                if (nc < 64) cands[nc++] = io[i].name;
                pos += (size_t)snprintf(names + pos, pos < sizeof names ? sizeof names - pos : 0, "%s'%s'",
                                        i ? ", " : "", io[i].name);
                if (pos >= sizeof names) pos = sizeof names - 1;
            }
            snprintf(want, sizeof want, "%.*s", (int)nlen, name);
            const char *hint = kc_suggest(want, cands, nc);
            if (hint)
                *exit_code = kc_fail(KC_EXIT_USAGE, cmd, "%s: the model has no input '%s' (did you mean '%s'?)", flag,
                                     want, hint);
            else
                *exit_code = kc_fail(KC_EXIT_USAGE, cmd, "%s: the model has no input '%s' (inputs: %s)", flag, want,
                                     names);
            goto done;
        }
        if (*n_items == max_items) {
            *exit_code = kc_fail(KC_EXIT_USAGE, cmd, "%s: too many shapes", flag);
            goto done;
        }
        kc_shape_item *it = &items[(*n_items)++];
        it->input = idx;
        char err[256];
        size_t dlen = len - nlen - 1 - (name != item ? 2 : 0);
        if (!kc_parse_dims(colon + 1, dlen, it->dims, &it->rank, err, sizeof err)) {
            *exit_code = kc_fail(KC_EXIT_USAGE, cmd, "%s: input '%s': %s", flag, io[idx].name, err);
            goto done;
        }
        if (io[idx].rank >= 0 && it->rank != io[idx].rank) {
            char type[512];
            *exit_code = kc_fail(KC_EXIT_USAGE, cmd, "%s: input '%s' is %s (rank %d), the shape has %d dimension%s",
                                 flag, io[idx].name, kc_fmt_io(&io[idx], type, sizeof type), io[idx].rank, it->rank,
                                 it->rank == 1 ? "" : "s");
            goto done;
        }
        for (int d = 0; d < it->rank && io[idx].rank >= 0; d++)
            if (io[idx].dims[d] >= 0 && io[idx].dims[d] != it->dims[d]) {
                char type[512];
                *exit_code = kc_fail(KC_EXIT_USAGE, cmd, "%s: input '%s' is %s: axis %d is fixed to %lld, not %lld",
                                     flag, io[idx].name, kc_fmt_io(&io[idx], type, sizeof type), d,
                                     (long long)io[idx].dims[d], (long long)it->dims[d]);
                goto done;
            }
        item += len + (end ? 1 : 0);
        if (end && !*item) {
            *exit_code = kc_fail(KC_EXIT_USAGE, cmd, "%s: trailing ',' in '%s'", flag, spec);
            goto done;
        }
    }
    ok = true;
done:
    free(io);
    return ok;
}

bool kc_parse_size(const char *text, uint64_t default_unit, uint64_t *bytes) {
    char *end;
    errno = 0;
    double v = strtod(text, &end);
    if (end == text || errno || !(v >= 0) || v > 1e18) return false;
    uint64_t unit = default_unit;
    if (*end) {
        static const struct {
            const char *s;
            uint64_t unit;
        } units[] = {{"B", 1},           {"K", 1ull << 10}, {"KiB", 1ull << 10}, {"KB", 1ull << 10},
                     {"M", 1ull << 20},  {"MiB", 1ull << 20}, {"MB", 1ull << 20}, {"G", 1ull << 30},
                     {"GiB", 1ull << 30}, {"GB", 1ull << 30}};
        unit = 0;
        for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
            if (strcasecmp(end, units[i].s) == 0) unit = units[i].unit;
        if (!unit) return false;
    }
    double b = v * (double)unit;
    if (b > 1.8e19) return false;
    *bytes = (uint64_t)b;
    return true;
}

char *kc_fmt_precision(unsigned flags, char *buf, size_t size) {
    snprintf(buf, size, "fp32%s%s%s%s%s", flags & KILN_PRECISION_TF32 ? "+tf32" : "",
             flags & KILN_PRECISION_FP16 ? "+fp16" : "", flags & KILN_PRECISION_BF16 ? "+bf16" : "",
             flags & KILN_PRECISION_INT8 ? "+int8" : "", flags & KILN_PRECISION_STRONGLY_TYPED ? " (strongly typed)" : "");
    return buf;
}

bool kc_engine_opt_spec(const kiln_engine *e, size_t profile, char *buf, size_t size) {
    const char *opts = kc_engine_str(e, "build_options", NULL);
    char key[48];
    snprintf(key, sizeof key, "profile%zu=", profile);
    const char *p = opts;
    while (p && (p = strstr(p, key)) != NULL && p != opts && p[-1] != ' ') p++;
    if (!p) return false;
    p += strlen(key);
    size_t end = strcspn(p, " "), pos = 0;
    buf[0] = 0;
    /* Items "name:min/opt/max" separated by ';'. */
    for (size_t i = 0; i < end;) {
        size_t len = strcspn(p + i, "; ");
        if (len > end - i) len = end - i;
        const char *item = p + i, *colon = NULL;
        for (const char *c = item; c < item + len; c++)
            if (*c == ':') colon = c;
        const char *s1 = colon ? memchr(colon, '/', (size_t)(item + len - colon)) : NULL;
        const char *s2 = s1 ? memchr(s1 + 1, '/', (size_t)(item + len - s1 - 1)) : NULL;
        if (!colon || !s1 || !s2) return false;
        int w = snprintf(buf + pos, size - pos, "%s%.*s:%.*s", pos ? "," : "", (int)(colon - item), item,
                         (int)(s2 - s1 - 1), s1 + 1);
        if (w < 0 || (size_t)w >= size - pos) return false;
        pos += (size_t)w;
        i += len + 1;
    }
    return pos > 0;
}

const char *kc_engine_str(const kiln_engine *e, const char *key, const char *fallback) {
    const char *v = NULL;
    return e && kiln_engine_get(e, key, &v) == KILN_OK && v ? v : fallback;
}

long long kc_engine_num(const kiln_engine *e, const char *key) {
    const char *v = kc_engine_str(e, key, NULL);
    if (!v) return -1;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    return end == v || errno ? -1 : n;
}

/* ---- build options ------------------------------------------------------------- */

/* One-line error for a failed setter: `what` names the flag. */
static bool kc_opt_failed(const char *cmd, const char *what, int *exit_code) {
    *exit_code = kc_fail(KC_EXIT_MODEL, cmd, "%s: %s", what, kiln_last_error());
    return false;
}

/* Set profile `p` of `c` on `o`, checking its shapes against `m`. */
static bool kc_profile_apply(const char *cmd, const kc_build_cfg *c, size_t p, const kiln_model *m,
                             kiln_build_options *o, int *exit_code) {
    const kc_profile_spec *ps = &c->profiles[p];
    const char *specs[3] = {ps->min, ps->opt, ps->max};
    static const char *const dflt[3] = {"--minShapes", "--optShapes", "--maxShapes"};
    kc_shape_item items[3][64];
    size_t n[3] = {0, 0, 0};
    for (int k = 0; k < 3; k++) {
        const char *flag = c->profile_flag[k] ? c->profile_flag[k] : dflt[k];
        if (specs[k] && !kc_shape_spec_parse(cmd, flag, specs[k], m, items[k], 64, &n[k], exit_code)) return false;
    }
    size_t index;
    if (kiln_build_options_add_profile(o, &index) != KILN_OK) return kc_opt_failed(cmd, "profile", exit_code);
    /* Every input named in one of min/opt/max needs all three; each is set once. */
    bool done_input[4096] = {false};
    for (int k = 0; k < 3; k++)
        for (size_t i = 0; i < n[k]; i++) {
            size_t input = items[k][i].input;
            if (input < 4096 && done_input[input]) continue;
            if (input < 4096) done_input[input] = true;
            const kc_shape_item *found[3] = {NULL, NULL, NULL};
            for (int q = 0; q < 3; q++)
                for (size_t j = 0; j < n[q]; j++)
                    if (items[q][j].input == input) found[q] = &items[q][j];
            const char *name = "?";
            kiln_dtype dt;
            int rank;
            kiln_model_input_info(m, input, &name, &dt, &rank);
            for (int q = 0; q < 3; q++)
                if (!found[q]) {
                    *exit_code = kc_fail(KC_EXIT_USAGE, cmd,
                                         "profile %zu: input '%s' has no %s shape (give %s, %s and %s for it)", p,
                                         name, q == 0 ? "min" : q == 1 ? "opt" : "max",
                                         c->profile_flag[0] ? c->profile_flag[0] : dflt[0],
                                         c->profile_flag[1] ? c->profile_flag[1] : dflt[1],
                                         c->profile_flag[2] ? c->profile_flag[2] : dflt[2]);
                    return false;
                }
            if (found[0]->rank != found[1]->rank || found[1]->rank != found[2]->rank) {
                *exit_code = kc_fail(KC_EXIT_USAGE, cmd, "profile %zu: input '%s': the min, opt and max shapes have "
                                     "%d, %d and %d dimensions", p, name, found[0]->rank, found[1]->rank,
                                     found[2]->rank);
                return false;
            }
            for (int d = 0; d < found[0]->rank; d++)
                if (found[0]->dims[d] > found[1]->dims[d] || found[1]->dims[d] > found[2]->dims[d]) {
                    *exit_code = kc_fail(KC_EXIT_USAGE, cmd, "profile %zu: input '%s' axis %d: min %lld <= opt %lld "
                                         "<= max %lld does not hold", p, name, d, (long long)found[0]->dims[d],
                                         (long long)found[1]->dims[d], (long long)found[2]->dims[d]);
                    return false;
                }
            if (kiln_build_options_set_profile_shape(o, index, name, found[0]->rank, found[0]->dims, found[1]->dims,
                                                     found[2]->dims) != KILN_OK) {
                char what[300];
                snprintf(what, sizeof what, "profile %zu: input '%s'", p, name);
                return kc_opt_failed(cmd, what, exit_code);
            }
        }
    return true;
}

bool kc_add_providers(const char *cmd, const char *list, bool strict, kiln_status (*add)(void *o, const char *name),
                      void *o, int *exit_code) {
    size_t added = 0, n_skipped = 0;
    char skipped[4][512]; /* why each skipped provider cannot run: warned about once another one runs */
    for (const char *p = list;;) {
        size_t len = strcspn(p, ",");
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(len < 63 ? len : 63), p);
        if (!*name) {
            *exit_code = kc_fail(KC_EXIT_USAGE, cmd, "--providers: empty provider name in '%s'", list);
            return false;
        }
        kiln_status s = add(o, name);
        if (s == KILN_OK) {
            added++;
        } else if (s == KILN_ERR_UNSUPPORTED && !strict) {
            if (n_skipped < 4) snprintf(skipped[n_skipped], sizeof skipped[0], "%s", kiln_last_error());
            n_skipped++;
        } else {
            *exit_code = kc_fail(s == KILN_ERR_NOT_FOUND ? KC_EXIT_USAGE : KC_EXIT_MODEL, cmd, "--providers: %s",
                                 kiln_last_error());
            return false;
        }
        if (!p[len]) break;
        p += len + 1;
    }
    if (!added) { /* nothing left to fall back to: the first reason is the error */
        *exit_code = kc_fail(KC_EXIT_MODEL, cmd, "--providers: none of '%s' can run here: %s", list, skipped[0]);
        return false;
    }
    fflush(stdout);
    for (size_t i = 0; i < n_skipped && i < 4; i++)
        fprintf(stderr, "kiln: %s: warning: --providers: %s; skipped (--strict-providers refuses)\n", cmd, skipped[i]);
    return true;
}

static kiln_status kc_add_build_provider(void *o, const char *name) {
    return kiln_build_options_append_provider((kiln_build_options *)o, name);
}

bool kc_build_options_make(const char *cmd, const kc_build_cfg *c, const kiln_model *m,
                           kiln_build_options **out, int *exit_code) {
    kiln_build_options *o = NULL;
    char buf[64];
    if (kiln_build_options_create(&o) != KILN_OK) return kc_opt_failed(cmd, "build options", exit_code);
    if (c->providers && !kc_add_providers(cmd, c->providers, c->strict_providers, kc_add_build_provider, o, exit_code))
        goto fail;
    if (c->strict_providers && kiln_build_options_set(o, "strict_providers", "1") != KILN_OK) {
        kc_opt_failed(cmd, "--strict-providers", exit_code);
        goto fail;
    }
    if (c->threads && kiln_build_options_set_threads(o, (int)c->threads) != KILN_OK) {
        kc_opt_failed(cmd, "--threads", exit_code);
        goto fail;
    }
    unsigned prec = c->precision;
    if (c->best) prec |= KILN_PRECISION_FP16 | KILN_PRECISION_BF16 | KILN_PRECISION_TF32 | KILN_PRECISION_INT8;
    if (prec) {
        kiln_status s = kiln_build_options_set_precision(o, prec);
        if (s == KILN_ERR_NOT_IMPLEMENTED && c->best && !(c->precision & KILN_PRECISION_INT8)) {
            /* --best allows what exists: say that INT8 is left out, then retry without it. */
            char msg[1024];
            snprintf(msg, sizeof msg, "--best: INT8 is left out: %s", kiln_last_error());
            if (c->log) c->log(KILN_LOG_WARNING, msg, c->log_user);
            prec &= ~(unsigned)KILN_PRECISION_INT8;
            s = kiln_build_options_set_precision(o, prec);
        }
        if (s != KILN_OK) {
            if (prec & KILN_PRECISION_INT8)
                *exit_code = kc_fail(KC_EXIT_MODEL, cmd, "--int8: %s", kiln_last_error());
            else
                *exit_code = kc_fail(KC_EXIT_MODEL, cmd, "precision %s: %s", kc_fmt_precision(prec, buf, sizeof buf),
                                     kiln_last_error());
            goto fail;
        }
    }
    for (size_t p = 0; p < c->n_profiles; p++)
        if (!kc_profile_apply(cmd, c, p, m, o, exit_code)) goto fail;
    if (c->workspace && kiln_build_options_set_workspace(o, c->workspace) != KILN_OK) {
        kc_opt_failed(cmd, "workspace", exit_code);
        goto fail;
    }
    if (c->timing_cache && kiln_build_options_set_timing_cache(o, c->timing_cache) != KILN_OK) {
        kc_opt_failed(cmd, "timing cache", exit_code);
        goto fail;
    }
    for (size_t i = 0; i < c->n_disable; i++) {
        kiln_status s = kiln_build_options_disable_pass(o, c->disable_pass[i]);
        if (s != KILN_OK) {
            *exit_code = kc_fail(s == KILN_ERR_NOT_FOUND ? KC_EXIT_USAGE : KC_EXIT_MODEL, cmd, "--disable-pass: %s",
                                 kiln_last_error());
            goto fail;
        }
    }
    if (c->pass_limit && kiln_build_options_set(o, "pass_limit", c->pass_limit) != KILN_OK) {
        kc_opt_failed(cmd, "--pass-limit", exit_code);
        goto fail;
    }
    if (c->tactic && kiln_build_options_set(o, "tactic", c->tactic) != KILN_OK) {
        *exit_code = kc_fail(KC_EXIT_USAGE, cmd, "--tactic: %s", kiln_last_error());
        goto fail;
    }
    if (c->no_optimize && kiln_build_options_set(o, "optimize", "0") != KILN_OK) {
        kc_opt_failed(cmd, "optimize", exit_code);
        goto fail;
    }
    if (c->prepack && kiln_build_options_set(o, "prepack", "1") != KILN_OK) {
        kc_opt_failed(cmd, "prepack", exit_code);
        goto fail;
    }
    if (c->layout && kiln_build_options_set(o, "layout", c->layout) != KILN_OK) {
        kc_opt_failed(cmd, "layout", exit_code);
        goto fail;
    }
    if (c->keep_denormals && kiln_build_options_set(o, "denormals", "keep") != KILN_OK) {
        kc_opt_failed(cmd, "denormals", exit_code);
        goto fail;
    }
    if (c->log && kiln_build_options_set_log(o, c->log, c->log_user, c->log_level) != KILN_OK) {
        kc_opt_failed(cmd, "build log", exit_code);
        goto fail;
    }
    *out = o;
    return true;
fail:
    kiln_build_options_destroy(o);
    return false;
}

/* ---- build log ----------------------------------------------------------------- */

/* Parse "progress D/N" (optionally followed by text); false otherwise. */
static bool kc_parse_progress(const char *m, unsigned long *done, unsigned long *total) {
    if (strncmp(m, "progress ", 9) != 0) return false;
    char *end;
    *done = strtoul(m + 9, &end, 10);
    if (*end != '/') return false;
    *total = strtoul(end + 1, &end, 10);
    return *total > 0;
}

void kc_build_log_fn(kiln_log_level level, const char *message, void *user) {
    kc_build_log *l = user;
    unsigned long done, total;
    if (level == KILN_LOG_DEBUG && kc_parse_progress(message, &done, &total)) {
        if (!l->bar) return;
        int width = 30, fill = (int)(done * (unsigned long)width / total);
        if (fill > width) fill = width;
        fprintf(stderr, "\r\033[Ktiming tactics [%.*s%*s] %lu/%lu", fill, "==============================",
                width - fill, "", done, total);
        fflush(stderr);
        l->bar_shown = true;
        return;
    }
    if (!l->fp32_note[0] && (strstr(message, "FP32") || strstr(message, "fp32")) &&
        (strstr(message, "keep") || strstr(message, "kept")))
        snprintf(l->fp32_note, sizeof l->fp32_note, "%s", message);
    if (level == KILN_LOG_WARNING) l->warnings++;
    if (level > KILN_LOG_WARNING && !l->verbose) return;
    if (l->fp32_note[0] && strcmp(message, l->fp32_note) == 0) {
        if (l->fp32_note_shown) return; /* said once is enough */
        l->fp32_note_shown = true;
    }
    if (l->bar_shown) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
    }
    unsigned lv = (unsigned)level < 4 ? (unsigned)level : 3;
    fprintf(l->out, "%s", l->prefix[lv] ? l->prefix[lv] : "");
    for (const char *p = message; *p; p++) fputc((unsigned char)*p < 0x20 && *p != '\t' ? ' ' : *p, l->out);
    fputc('\n', l->out);
    if (l->out != stdout) fflush(l->out);
}

void kc_build_log_done(kc_build_log *l) {
    if (l->bar_shown) {
        fprintf(stderr, "\r\033[K");
        fflush(stderr);
        l->bar_shown = false;
    }
}
