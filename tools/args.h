/*
 * args.h — pieces shared by `kiln build`, `kiln trtexec`, `kiln profile`
 * and `kiln graph`: an in-order flag parser (flags whose meaning depends on
 * their position, such as --profile, and trtexec's --flag=value syntax),
 * closest-flag suggestions, optimization-profile shape specs, and the
 * translation of a build configuration into kiln_build_options.
 */
#ifndef KILN_TOOLS_ARGS_H
#define KILN_TOOLS_ARGS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cli.h"

/* ---- in-order parsing --------------------------------------------------------- */

/* One flag: whether it takes a value, and a line of help. */
typedef enum kc_opt_value {
    KC_OPT_NONE = 0,     /* --fp16 */
    KC_OPT_REQUIRED = 1, /* --iterations=N or --iterations N */
    KC_OPT_OPTIONAL = 2  /* --threads or --threads=N (a value only with '=') */
} kc_opt_value;

typedef struct kc_opt {
    const char *name;   /* "--fp16" */
    kc_opt_value value;
    const char *arg;    /* value placeholder for help ("N", "FILE"), or NULL */
    const char *help;   /* one line */
} kc_opt;

typedef enum kc_arg_kind {
    KC_ARG_END = 0,
    KC_ARG_FLAG,           /* *opt and (maybe) *value set */
    KC_ARG_POSITIONAL,     /* *value set */
    KC_ARG_UNKNOWN,        /* word holds the flag as written (before '=') */
    KC_ARG_MISSING_VALUE,  /* *opt set */
    KC_ARG_UNEXPECTED_VALUE, /* *opt set: --fp16=1 */
    KC_ARG_HELP            /* --help or -h */
} kc_arg_kind;

typedef struct kc_args {
    int argc;
    char **argv;
    int i;                /* next index */
    const kc_opt *opts;   /* terminated by {NULL} */
    bool flags_done;      /* after "--" */
} kc_args;

/* Start parsing argv[1..argc) against `opts`. */
void kc_args_init(kc_args *a, int argc, char **argv, const kc_opt *opts);
/* Next argument.  word (size >= 256) receives the flag as written for
 * KC_ARG_UNKNOWN. */
kc_arg_kind kc_args_next(kc_args *a, const kc_opt **opt, const char **value, char *word, size_t wsize);
/* Closest flag of `opts` to `word` by edit distance (at most max(2,
 * len/3) edits), or NULL. */
const char *kc_opts_suggest(const kc_opt *opts, const char *word);
/* The usage error for a flag that kc_args_next reported as unknown (with
 * the closest flag as a hint), missing its value or given one it does not
 * take; prints it through kc_fail and returns KC_EXIT_USAGE.  `help` is
 * the subcommand named in "try 'kiln help HELP'". */
int kc_args_usage_error(kc_arg_kind kind, const kc_opt *opts, const kc_opt *o, const char *word, const char *cmd,
                        const char *help);
/* Print the flags of `opts`, one line each ("  --iterations=N  help"). */
void kc_opts_help(FILE *f, const kc_opt *opts, bool eq_syntax);

/* ---- profiles ------------------------------------------------------------------ */

#define KC_MAX_PROFILES 16

/* The shape specs of one optimization profile: "name:1x3x224x224,..." for
 * each of min, opt and max (NULL when not given). */
typedef struct kc_profile_spec {
    const char *min, *opt, *max;
} kc_profile_spec;

/* ---- build configuration ------------------------------------------------------- */

typedef struct kc_build_cfg {
    const char *providers;     /* "cpu,cuda" or NULL (default order) */
    bool strict_providers;
    long long threads;         /* 0 = one per core */
    unsigned precision;        /* OR of kiln_precision_flag */
    bool best;                 /* --best: allow every precision kiln has (INT8 dropped with a warning) */
    kc_profile_spec profiles[KC_MAX_PROFILES];
    size_t n_profiles;
    const char *profile_flag[3]; /* names of the min/opt/max flags, for messages */
    uint64_t workspace;        /* bytes, 0 = no limit */
    const char *timing_cache;
    const char *disable_pass[64];
    size_t n_disable;
    const char *pass_limit;
    const char *tactic;        /* "conv=NAME,gemm=NAME" */
    bool no_optimize;          /* option "optimize" = "0" */
    bool prepack;              /* option "prepack" = "1" */
    const char *layout;        /* option "layout" (NULL: the default) */
    bool keep_denormals;       /* option "denormals" = "keep" */
    kiln_log_fn log;
    void *log_user;
    kiln_log_level log_level;
} kc_build_cfg;

/* Make build options for model `m` from `c`: check every profile's shapes
 * against the model's inputs (names, ranks, fixed dims, min <= opt <= max)
 * with one-line usage errors, then set everything on the options.  A
 * setting kiln refuses (KILN_ERR_NOT_IMPLEMENTED for INT8) is one line
 * naming the flag.  On failure returns false with *exit_code set. */
bool kc_build_options_make(const char *cmd, const kc_build_cfg *c, const kiln_model *m,
                           kiln_build_options **out, int *exit_code);

/* Add the providers of `list` ("cuda,cpu") in order through add(o, name).
 * As ONNX Runtime does with a provider it lacks, a name compiled out or
 * not usable on this machine is skipped with a warning on stderr (unless
 * `strict`: then it fails), as long as another one remains; an unknown name
 * is a usage error.  Prints one line and returns false with *exit_code set
 * on failure. */
bool kc_add_providers(const char *cmd, const char *list, bool strict, kiln_status (*add)(void *o, const char *name),
                      void *o, int *exit_code);

/* Parse "name:1x3x224x224,name2:1x128" (`flag` names the flag in messages)
 * for the model's inputs into items (input index, rank, dims).  One-line
 * usage error on bad syntax, an unknown input or a wrong rank. */
typedef struct kc_shape_item {
    size_t input;
    int rank;
    int64_t dims[KILN_MAX_RANK];
} kc_shape_item;
bool kc_shape_spec_parse(const char *cmd, const char *flag, const char *spec, const kiln_model *m,
                         kc_shape_item *items, size_t max_items, size_t *n_items, int *exit_code);

/* Parse a size with an optional unit suffix (B, K/KiB, M/MiB, G/GiB;
 * `default_unit` bytes when none) into bytes. */
bool kc_parse_size(const char *text, uint64_t default_unit, uint64_t *bytes);

/* The precision flags as text: "fp32+fp16+bf16". */
char *kc_fmt_precision(unsigned flags, char *buf, size_t size);

/* The opt shapes of profile `profile` of engine `e` as a --shapes spec
 * ("input:8x3x224x224,mask:8x128") into buf; false when the engine has no
 * such profile.  Read from the "build_options" fact (kiln.h has no profile
 * accessor yet). */
bool kc_engine_opt_spec(const kiln_engine *e, size_t profile, char *buf, size_t size);

/* The engine fact `key` (kiln_engine_get), or `fallback`. */
const char *kc_engine_str(const kiln_engine *e, const char *key, const char *fallback);
/* The engine fact `key` as a number, or -1. */
long long kc_engine_num(const kiln_engine *e, const char *key);

/* A terminal progress bar for "progress D/N" build messages. */
typedef struct kc_build_log {
    const char *cmd;
    bool verbose;       /* print info and debug lines */
    bool bar;           /* draw a progress bar on stderr */
    bool bar_shown;
    FILE *out;          /* where log lines go */
    const char *prefix[4]; /* per level, e.g. "[E] " or "" */
    size_t warnings;
    char fp32_note[512]; /* the first line saying a provider keeps FP32 */
    bool fp32_note_shown; /* that line was printed */
} kc_build_log;
/* kiln_log_fn for kiln_build_options_set_log; user is a kc_build_log. */
void kc_build_log_fn(kiln_log_level level, const char *message, void *user);
/* Clear the progress bar if one is shown. */
void kc_build_log_done(kc_build_log *l);

/* ---- per-layer profiles (kiln profile, kiln trtexec --dumpProfile) ------------------ */

/* One layer's time, summed over the contexts profiled. */
typedef struct kc_layer_time {
    size_t index; /* as in kiln_engine_layer_info */
    const char *name, *op, *provider, *tactic, *fused_from; /* borrowed from the engine */
    char kernel[192]; /* what ran it in the first context (kiln_context_layer_kernel) */
    double total_ms;
    uint64_t runs;
} kc_layer_time;

/* Per-layer times of `e` summed over the n_ctx profiled contexts, sorted by
 * total time (largest first); *sum_ms is the total over layers.  *out is
 * malloc'ed.  false with kiln's message in err. */
bool kc_layer_times(const kiln_engine *e, kiln_context *const *ctx, size_t n_ctx, kc_layer_time **out, size_t *n,
                    double *sum_ms, char *err, size_t errsize);
/* Print the table: each line starts with `prefix` ("" or "[I] "). */
void kc_layer_times_print(FILE *f, const char *prefix, const kc_layer_time *t, size_t n, double sum_ms);
/* The same times summed per op type and provider, largest first. */
void kc_layer_times_by_op(FILE *f, const kc_layer_time *t, size_t n, double sum_ms);
/* Write the layers as a JSON array; with `trtexec`, the first element is
 * {"count": runs} and keys follow trtexec's --exportProfile. */
struct kj_writer;
void kc_layer_times_json(struct kj_writer *w, const kc_layer_time *t, size_t n, double sum_ms, bool trtexec);

#endif
