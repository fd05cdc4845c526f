/* kiln sysinfo (and kiln bench --peak): the CPU, its ISA levels and the
 * FP32 FMA peak kiln measures on it, per level, on 1 thread and on all. */
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "cli.h"
#include "json.h"

/* Level names, lowest first (kiln_cpu_peak_gflops's names). */
static const char *const kc_levels[] = {"ref", "avx2", "avx512"};
#define KC_N_LEVELS 3

/* A CPU fact, or "" (kiln_cpu_get). */
static const char *kc_cpu_fact(const char *key) {
    const char *v = NULL;
    return kiln_cpu_get(key, &v) == KILN_OK && v ? v : "";
}

/* Whether `level` is in the comma-separated `levels`. */
static bool kc_level_in(const char *levels, const char *level) {
    size_t n = strlen(level);
    for (const char *p = levels; *p;) {
        size_t len = strcspn(p, ",");
        if (len == n && memcmp(p, level, n) == 0) return true;
        p += len + (p[len] == ',');
    }
    return false;
}

bool kc_peak_for(const char *isa, int threads, double *gflops) {
    *gflops = 0;
    return kiln_cpu_peak_gflops(isa, threads, gflops) == KILN_OK;
}

/* What a level is here: "usable", "excluded by KILN_ISA" or "not supported
 * by this CPU". */
static const char *kc_level_state(const char *level) {
    if (kc_level_in(kc_cpu_fact("isa_levels"), level)) return "usable";
    int at = -1, best = -1;
    for (int i = 0; i < KC_N_LEVELS; i++) {
        if (strcmp(kc_levels[i], level) == 0) at = i;
        if (strcmp(kc_levels[i], kc_cpu_fact("isa_detected")) == 0) best = i;
    }
    return at >= 0 && at <= best ? "excluded by KILN_ISA" : "not supported by this CPU";
}

/* Provider i's name, and NULL when it can run here or why it cannot. */
static const char *kc_provider(size_t i, const char **why) {
    const char *name = NULL, *reason = NULL;
    int usable = 0;
    if (kiln_provider_info(i, &name, &usable, &reason) != KILN_OK || !name) {
        *why = "unknown";
        return "?";
    }
    *why = usable ? NULL : reason ? reason : "not usable";
    return name;
}

int kc_sysinfo_report(const char *cmd, bool json, int threads) {
    int cores = kc_cpu_cores();
    int all = threads > 0 ? threads : cores;
    double peak[KC_N_LEVELS][2] = {{0}};
    bool ok[KC_N_LEVELS][2] = {{false}};
    double t0 = kc_now();
    for (int i = 0; i < KC_N_LEVELS; i++) {
        if (strcmp(kc_level_state(kc_levels[i]), "usable") != 0) continue;
        ok[i][0] = kc_peak_for(kc_levels[i], 1, &peak[i][0]);
        if (all > 1) ok[i][1] = kc_peak_for(kc_levels[i], all, &peak[i][1]);
        if (!ok[i][0] || (all > 1 && !ok[i][1]))
            return kc_fail(KC_EXIT_MODEL, cmd, "measuring the %s peak: %s", kc_levels[i], kiln_last_error());
    }
    double took = kc_now() - t0;
    char model[256];
    kc_cpu_model(model, sizeof model);
    const char *env = getenv("KILN_ISA");
    if (json) {
        kj_writer w;
        kj_init(&w, stdout);
        kj_object_begin(&w);
        kj_key(&w, "kiln_version");
        kj_string(&w, kiln_version());
        kj_key(&w, "cpu");
        kj_string(&w, model);
        kj_key(&w, "cpuid_brand");
        kj_string(&w, kc_cpu_fact("model"));
        kj_key(&w, "vendor");
        kj_string(&w, kc_cpu_fact("vendor"));
        kj_key(&w, "cores");
        kj_int(&w, cores);
        kj_key(&w, "features");
        kj_string(&w, kc_cpu_fact("features"));
        kj_key(&w, "isa_detected");
        kj_string(&w, kc_cpu_fact("isa_detected"));
        kj_key(&w, "isa_levels");
        kj_string(&w, kc_cpu_fact("isa_levels"));
        kj_key(&w, "isa");
        kj_string(&w, kc_cpu_fact("isa"));
        kj_key(&w, "kiln_isa_env");
        kj_string(&w, env);
        kj_key(&w, "peak_gflops");
        kj_array_begin(&w);
        for (int i = 0; i < KC_N_LEVELS; i++) {
            for (int k = 0; k < 2; k++) {
                if (!ok[i][k]) continue;
                kj_object_begin(&w);
                kj_key(&w, "isa");
                kj_string(&w, kc_levels[i]);
                kj_key(&w, "threads");
                kj_int(&w, k ? all : 1);
                kj_key(&w, "gflops");
                kj_double(&w, peak[i][k]);
                kj_object_end(&w);
            }
        }
        kj_array_end(&w);
        kj_key(&w, "measure_s");
        kj_double(&w, took);
        kj_key(&w, "providers");
        kj_array_begin(&w);
        size_t np = 0;
        kiln_providers_available(&np);
        for (size_t i = 0; i < np; i++) {
            const char *why = NULL, *name = kc_provider(i, &why);
            kj_object_begin(&w);
            kj_key(&w, "name");
            kj_string(&w, name);
            kj_key(&w, "usable");
            kj_bool(&w, why == NULL);
            kj_key(&w, "reason");
            kj_string(&w, why ? why : "");
            kj_object_end(&w);
        }
        kj_array_end(&w);
        kj_object_end(&w);
        kj_finish(&w);
        return kc_finish_stdout(KC_EXIT_OK);
    }
    printf("kiln: %s\n", kiln_version());
    printf("CPU: %s (%s; cpuid: %s)\n", model, kc_cpu_fact("vendor"), kc_cpu_fact("model"));
    printf("Cores: %d online\n", cores);
    printf("Features: %s\n", kc_cpu_fact("features"));
    printf("ISA: detected %s; in use %s", kc_cpu_fact("isa_detected"), kc_cpu_fact("isa"));
    if (env && *env) printf(" (KILN_ISA=%s)", env);
    printf("\n");
    printf("FP32 FMA peak, measured (GFLOP/s, all threads together):\n");
    char col[32];
    snprintf(col, sizeof col, "%d threads", all);
    printf("  %-8s %10s %12s\n", "level", "1 thread", all > 1 ? col : "");
    for (int i = 0; i < KC_N_LEVELS; i++) {
        const char *state = kc_level_state(kc_levels[i]);
        if (!ok[i][0]) {
            printf("  %-8s %s\n", kc_levels[i], state);
            continue;
        }
        printf("  %-8s %10.1f", kc_levels[i], peak[i][0]);
        if (all > 1) printf(" %12.1f", peak[i][1]);
        else printf(" %12s", "");
        if (strcmp(kc_levels[i], kc_cpu_fact("isa")) == 0) printf("   <- in use");
        printf("\n");
    }
    printf("(ref: portable C multiply-adds; avx2: 256-bit FMA; avx512: 512-bit FMA; measured in %.2f s)\n", took);
    size_t np = 0;
    kiln_providers_available(&np);
    printf("Providers:\n");
    for (size_t i = 0; i < np; i++) {
        const char *why = NULL, *name = kc_provider(i, &why);
        printf("  %-8s %s%s\n", name, why ? "not usable: " : "usable", why ? why : "");
    }
    return kc_finish_stdout(KC_EXIT_OK);
}

int kc_cmd_sysinfo(int argc, char **argv) {
    const char *cmd = "sysinfo";
    bool json = false;
    const char *threads_s = NULL;
    const kc_flag flags[] = {{"--json", &json, NULL, NULL}, {"--threads", NULL, &threads_s, NULL}, {NULL, NULL, NULL, NULL}};
    int code = KC_EXIT_OK;
    if (!kc_parse_flags(argc, argv, flags, &code)) return code;
    long long threads = 0;
    if (threads_s && !kc_parse_int(cmd, "--threads", threads_s, 0, 1024, &threads, &code)) return code;
    return kc_sysinfo_report(cmd, json, (int)threads);
}
