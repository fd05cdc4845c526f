/*
 * replay.c — run the fuzz target's steps (kl_onnx_parse, kl_check_model,
 * free) on files, without libFuzzer: the regression test for fuzz/corpus/.
 *
 *   fuzz_replay FILE|DIR...
 *
 * Each file is read into a buffer of exactly its size (so a sanitizer build
 * catches any read past the end), parsed with no base folder, and checked
 * when it loads.  Prints one line per file.  Exits 0 when every file was
 * processed (parse errors are expected), 1 when a file cannot be read or no
 * file was given; a bug shows as a crash or a sanitizer report.
 */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "onnx/onnx.h"

/* Read the whole file into a malloc'ed buffer of exactly its size. */
static int read_file(const char *path, uint8_t **data, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return -1;
    int rc = -1;
    if (fseek(f, 0, SEEK_END) == 0) {
        long n = ftell(f);
        if (n >= 0 && fseek(f, 0, SEEK_SET) == 0) {
            *size = (size_t)n;
            *data = malloc(*size ? *size : 1);
            if (*data && fread(*data, 1, *size, f) == *size)
                rc = 0;
            else
                free(*data);
        }
    }
    fclose(f);
    return rc;
}

/* Parse, check and free one file; print what happened.  0 unless unreadable. */
static int replay_file(const char *path) {
    uint8_t *data = NULL;
    size_t size = 0;
    if (read_file(path, &data, &size) != 0) {
        fprintf(stderr, "%s: cannot read\n", path);
        return 1;
    }
    kl_model *m = NULL;
    kiln_status s = kl_onnx_parse(data, size, path, NULL, &m);
    if (s != KILN_OK) {
        printf("%s: %s: %s\n", path, kiln_status_name(s), kl_error_message());
    } else {
        kl_check_result *r = NULL;
        s = kl_check_model(m, &r);
        if (s == KILN_OK) {
            printf("%s: loaded, %zu problem(s), %zu error(s)\n", path, r->n, r->n_errors);
            kl_check_free(r);
        } else {
            printf("%s: check failed: %s: %s\n", path, kiln_status_name(s), kl_error_message());
        }
        kl_model_free(m);
    }
    kl_error_clear();
    free(data);
    return 0;
}

/* Replay a file, or every regular file of a folder (not recursive, sorted). */
static int replay_path(const char *path, size_t *count) {
    struct stat st;
    if (stat(path, &st) != 0) {
        fprintf(stderr, "%s: not found\n", path);
        return 1;
    }
    if (!S_ISDIR(st.st_mode)) {
        ++*count;
        return replay_file(path);
    }
    struct dirent **names = NULL;
    int n = scandir(path, &names, NULL, alphasort);
    if (n < 0) {
        fprintf(stderr, "%s: cannot list\n", path);
        return 1;
    }
    int rc = 0;
    for (int i = 0; i < n; i++) {
        char full[4096];
        int len = snprintf(full, sizeof full, "%s/%s", path, names[i]->d_name);
        if (len > 0 && (size_t)len < sizeof full && stat(full, &st) == 0 && S_ISREG(st.st_mode)) {
            ++*count;
            rc |= replay_file(full);
        }
        free(names[i]);
    }
    free(names);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIR...\n", argv[0]);
        return 1;
    }
    int rc = 0;
    size_t count = 0;
    for (int i = 1; i < argc; i++)
        rc |= replay_path(argv[i], &count);
    printf("replayed %zu file(s)\n", count);
    return rc;
}
