/* CPU feature bits for tactic requirements and engine headers, from the
 * x86 detection (src/cpu/x86/isa.c: cpuid + XGETBV, lowered by KILN_ISA). */
#include <stdio.h>
#include <string.h>

#include "backend/provider.h"
#include "cpu/x86/isa.h"

uint32_t kl_cpu_features(void) {
    const kl_cpu_isa *c = kl_cpu_isa_get();
    uint32_t f = 0;
    if (c->active >= KL_ISA_AVX2) f |= KL_FEAT_AVX2;
    if (c->active >= KL_ISA_AVX512) {
        f |= KL_FEAT_AVX512;
        if (c->avx512vnni) f |= KL_FEAT_VNNI;
        if (c->avx512bf16) f |= KL_FEAT_BF16;
    }
    return f;
}

static const struct {
    uint32_t bit;
    const char *name;
} kl_feat_names[] = {{KL_FEAT_AVX2, "avx2"}, {KL_FEAT_AVX512, "avx512"}, {KL_FEAT_VNNI, "vnni"}, {KL_FEAT_BF16, "bf16"}};

const char *kl_features_format(uint32_t isa, char *buf, size_t size) {
    size_t used = 0;
    if (size) buf[0] = 0;
    for (size_t i = 0; i < KL_ARRAY_LEN(kl_feat_names); i++)
        if (isa & kl_feat_names[i].bit) {
            int n = snprintf(buf + used, used < size ? size - used : 0, "%s%s", used ? "," : "", kl_feat_names[i].name);
            if (n > 0) used += (size_t)n;
        }
    if (!isa) snprintf(buf, size, "none");
    return buf;
}

bool kl_features_parse(const char *s, uint32_t *isa) {
    uint32_t r = 0;
    if (strcmp(s, "none") == 0) {
        *isa = 0;
        return true;
    }
    while (*s) {
        const char *e = strchr(s, ',');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        bool found = false;
        for (size_t i = 0; i < KL_ARRAY_LEN(kl_feat_names); i++)
            if (strlen(kl_feat_names[i].name) == len && memcmp(kl_feat_names[i].name, s, len) == 0) {
                r |= kl_feat_names[i].bit;
                found = true;
            }
        if (!found) return false;
        s += len + (e ? 1 : 0);
    }
    *isa = r;
    return true;
}
