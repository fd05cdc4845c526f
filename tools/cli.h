/*
 * cli.h — shared pieces of the `kiln` command: subcommand entry points,
 * argument parsing, error reporting, model loading and number formatting.
 *
 * Exit codes: 0 success, 1 the model is broken or could not be loaded,
 * 2 usage error (unknown flag or subcommand, missing argument).
 */
#ifndef KILN_TOOLS_CLI_H
#define KILN_TOOLS_CLI_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kiln.h"

#define KC_EXIT_OK 0
#define KC_EXIT_MODEL 1
#define KC_EXIT_USAGE 2

/* Subcommands: argv[0] is the subcommand name; return the exit code. */
int kc_cmd_info(int argc, char **argv);
int kc_cmd_check(int argc, char **argv);
int kc_cmd_run(int argc, char **argv);
int kc_cmd_bench(int argc, char **argv);
int kc_cmd_compare(int argc, char **argv);
int kc_cmd_build(int argc, char **argv);
int kc_cmd_trtexec(int argc, char **argv);
int kc_cmd_profile(int argc, char **argv);
int kc_cmd_graph(int argc, char **argv);
int kc_cmd_sysinfo(int argc, char **argv);
/* Help printers of the subcommands whose flags come from a table. */
void kc_build_help(FILE *f);
void kc_trtexec_help(FILE *f);
void kc_profile_help(FILE *f);
void kc_graph_help(FILE *f);
/* Hidden: kiln preprocess IMAGE --output FILE.npy (ImageNet preprocessing). */
int kc_cmd_preprocess(int argc, char **argv);

/* Print the help of subcommand `name` to f; false if there is none. */
bool kc_help(FILE *f, const char *name);

/* ---- errors ----------------------------------------------------------------- */

/* Print "kiln: <cmd>: <message>" as one line on stderr (newlines and control
 * characters in the message are replaced) and return `code`. */
int kc_fail(int code, const char *cmd, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The message printed by the last kc_fail (without the "kiln: cmd: " prefix). */
const char *kc_last_failure(void);

/* ---- arguments ------------------------------------------------------------------ */

/* Values of a repeatable flag, in command-line order (borrowed from argv). */
#define KC_LIST_MAX 256
typedef struct kc_list {
    const char *items[KC_LIST_MAX];
    size_t n;
} kc_list;

/* A flag a subcommand accepts: exactly one of set/value/list is non-NULL. */
typedef struct kc_flag {
    const char *name;   /* "--json" */
    bool *set;          /* no value: set to true when given */
    const char **value; /* takes a value ("--topk 5" or "--topk=5"); the last one wins */
    kc_list *list;      /* takes a value and may be repeated; every value is appended */
} kc_flag;

/* Parse `argv[1..argc)` of subcommand argv[0]: flags from `flags` (terminated
 * by {NULL}) and exactly one positional MODEL argument ("--" ends flags).
 * On --help/-h prints the subcommand's help and sets *exit_code = 0.
 * Returns false with *exit_code set (and a message printed) when the
 * command should stop. */
bool kc_parse_args(int argc, char **argv, const kc_flag *flags, const char **model,
                   int *exit_code);
/* Same for a subcommand that takes flags only (no positional argument). */
bool kc_parse_flags(int argc, char **argv, const kc_flag *flags, int *exit_code);
/* Same, with the positional argument called `what` ("IMAGE") in messages. */
bool kc_parse_args_for(int argc, char **argv, const kc_flag *flags, const char *what,
                       const char **positional, int *exit_code);

/* Parse a whole decimal integer in [lo, hi] given to flag `flag` of `cmd`;
 * on error prints one line, sets *exit_code (usage) and returns false. */
bool kc_parse_int(const char *cmd, const char *flag, const char *text, long long lo, long long hi,
                  long long *out, int *exit_code);
/* Same for a finite number >= lo. */
bool kc_parse_double(const char *cmd, const char *flag, const char *text, double lo, double *out,
                     int *exit_code);

/* Monotonic clock in seconds. */
double kc_now(void);

/* Closest candidate to `word` (edit distance <= 2), or NULL. */
const char *kc_suggest(const char *word, const char *const *candidates, size_t n);

/* ---- loading ------------------------------------------------------------------- */

/* A model (or, with kc_load_model_or_engine, a kiln engine) loaded by the
 * command, or why it could not be. */
typedef struct kc_loaded {
    kiln_model *model;
    void *buffer;       /* bytes read into memory (stdin, pipes), or NULL */
    uint64_t file_size; /* size of the model file */
    kiln_status status; /* why loading failed */
    char error[2048];   /* the one-line message printed on failure */
    kiln_engine *engine; /* an engine file was loaded (model is then NULL) */
    kiln_model *io_model; /* with an engine: a node-less model declaring the
                             engine's inputs, for kc_inputs_prepare */
    void *io_buffer;     /* the bytes io_model borrows */
    double load_ms;      /* time spent in kiln_model_load / kiln_engine_load */
} kc_loaded;

/* Magic bytes that start a kiln engine file. */
#define KC_ENGINE_MAGIC "KILNENG"
#define KC_ENGINE_MAGIC_LEN 8 /* with its NUL */

/* Load the model at `path` for subcommand `cmd` ("-" reads stdin; pipes and
 * other non-regular files are read into memory).  On failure prints one line
 * on stderr, fills status/error and returns false with *exit_code set. */
bool kc_load_model(const char *cmd, const char *path, kc_loaded *out, int *exit_code);
/* Release what kc_load_model loaded. */
void kc_loaded_free(kc_loaded *l);
/* True when the file at `path` (not "-") starts with the engine magic. */
bool kc_file_is_engine(const char *path);
/* Like kc_load_model, but a file starting with "KILNENG\0" is loaded as an
 * engine (out->engine, out->io_model set; out->model NULL). */
bool kc_load_model_or_engine(const char *cmd, const char *path, kc_loaded *out, int *exit_code);
/* The model whose inputs the command feeds: the model, or the engine's
 * io_model. */
const kiln_model *kc_loaded_inputs(const kc_loaded *l);
/* Build a node-less ONNX model (protobuf bytes, malloc'ed into *out)
 * declaring the inputs of `e`; dynamic axis 0 is called "batch", other
 * dynamic axes "dimA" (shared by inputs, as most models share them). */
bool kc_engine_io_model_bytes(const kiln_engine *e, unsigned char **out, size_t *size);
/* Print kiln's last error for subcommand `cmd` about file `path`, without a
 * repeated "path: " prefix; returns `code`. */
int kc_fail_kiln(int code, const char *cmd, const char *path);

/* ---- formatting ------------------------------------------------------------------ */

/* "25,557,032" */
char *kc_fmt_int(uint64_t v, char *buf, size_t size);
/* Compact count: "25.56 M", "4.09 G", "12,345" (below one million). */
char *kc_fmt_count(uint64_t v, char *buf, size_t size);
/* Bytes with decimal units: "102.2 MB", "512 B". */
char *kc_fmt_bytes(uint64_t v, char *buf, size_t size);
/* Copy `s` (len bytes) for terminal output: control characters and invalid
 * UTF-8 bytes are written as \xNN.  Result truncated to fit buf. */
char *kc_fmt_name(const char *s, size_t len, char *buf, size_t size);

/* Finish stdout: report a write error (e.g. disk full) as one line;
 * returns `code`, or 1 if writing failed. */
int kc_finish_stdout(int code);

#endif
