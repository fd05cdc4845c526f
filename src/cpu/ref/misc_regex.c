/*
 * A small regular-expression engine for RegexFullMatch: RE2 syntax (the
 * subset without Unicode classes and captures that matter), compiled to a
 * Thompson NFA program and run as a Pike VM over UTF-8 code points, so the
 * time is linear in the input (no backtracking).
 *
 * Supported: literals, ., [...] with ranges, negation, escapes and POSIX
 * [:name:] classes, \d \D \s \S \w \W \b \B \A \z, ^ $, groups ( ) (?: )
 * (?P<name> ) (?<name> ), flags (?imsU) and (?flags: ), alternation, and the
 * repetitions * + ? {n} {n,} {n,m} (lazy forms accepted), \Q...\E, \x{..}.
 */
#include <stdlib.h>
#include <string.h>

#include "cpu/ref/misc.h"

#define RX_MAX_REPEAT 1000
#define RX_MAX_PROG 200000
#define RX_MAX_CP 0x10FFFF

typedef struct rx_range {
    uint32_t lo, hi;
} rx_range;

enum { RX_EMPTY, RX_SET, RX_CAT, RX_ALT, RX_REP, RX_ASSERT };
enum { AS_BOT, AS_EOT, AS_BOL, AS_EOL, AS_WORD, AS_NWORD };
enum { OP_CHAR, OP_SPLIT, OP_JMP, OP_ASSERT, OP_MATCH };

typedef struct rx_node {
    int kind;
    int a, b;     /* CAT/ALT children; REP child in a */
    int min, max; /* REP: max -1 = unbounded */
    int set;      /* SET: index into sets */
    int as;       /* ASSERT kind */
} rx_node;

typedef struct rx_inst {
    int op;
    int x, y; /* SPLIT/JMP targets; CHAR: set index; ASSERT: kind */
} rx_inst;

typedef struct rx_set {
    size_t off, n; /* ranges[off..off+n), sorted, disjoint */
} rx_set;

struct kl_regex {
    rx_inst *prog;
    size_t n_prog;
    rx_range *ranges;
    rx_set *sets;
};

typedef struct rx_parser {
    const unsigned char *p, *end;
    unsigned flags; /* 1 = i, 2 = m, 4 = s */
    rx_node *nodes;
    size_t n_nodes, cap_nodes;
    rx_range *ranges;
    size_t n_ranges, cap_ranges;
    rx_set *sets;
    size_t n_sets, cap_sets;
    int depth;
    const char *err;
} rx_parser;

enum { F_I = 1, F_M = 2, F_S = 4 };

/* ---- growable arrays -------------------------------------------------------------- */

static bool rx_grow(void **arr, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap) return true;
    size_t nc = *cap ? *cap * 2 : 32;
    while (nc < need) nc *= 2;
    void *n = kl_realloc_array(*arr, nc, elem);
    if (!n) return false;
    *arr = n;
    *cap = nc;
    return true;
}

/* New AST node of `kind`, -1 (p->err set) when out of room. */
static int rx_node_new(rx_parser *p, int kind) {
    if (p->err) return -1;
    if (p->n_nodes >= RX_MAX_PROG || !rx_grow((void **)&p->nodes, &p->cap_nodes, p->n_nodes + 1, sizeof *p->nodes)) {
        p->err = "pattern is too large";
        return -1;
    }
    memset(&p->nodes[p->n_nodes], 0, sizeof p->nodes[0]);
    p->nodes[p->n_nodes].kind = kind;
    p->nodes[p->n_nodes].a = p->nodes[p->n_nodes].b = -1;
    return (int)p->n_nodes++;
}

/* ---- character sets ------------------------------------------------------------------ */

/* A scratch set being built: a list of ranges, normalized at the end. */
typedef struct rx_cls {
    rx_range *r;
    size_t n, cap;
} rx_cls;

/* Append range [lo, hi] to a scratch class. */
static bool cls_add(rx_cls *c, uint32_t lo, uint32_t hi) {
    if (!rx_grow((void **)&c->r, &c->cap, c->n + 1, sizeof *c->r)) return false;
    c->r[c->n++] = (rx_range){lo, hi};
    return true;
}

/* qsort adapter: ranges by lower bound. */
static int range_cmp(const void *a, const void *b) {
    const rx_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo;
}

/* Sort and merge; with `fold`, add the other ASCII case of letters first. */
static bool cls_normalize(rx_cls *c, bool fold) {
    if (fold) {
        size_t n = c->n;
        for (size_t i = 0; i < n; i++) {
            uint32_t lo = c->r[i].lo, hi = c->r[i].hi;
            uint32_t a = lo > 'a' ? lo : 'a', b = hi < 'z' ? hi : 'z';
            if (a <= b && !cls_add(c, a - 32, b - 32)) return false;
            a = lo > 'A' ? lo : 'A', b = hi < 'Z' ? hi : 'Z';
            if (a <= b && !cls_add(c, a + 32, b + 32)) return false;
        }
    }
    if (c->n) qsort(c->r, c->n, sizeof *c->r, range_cmp);
    size_t o = 0;
    for (size_t i = 0; i < c->n; i++) {
        if (o && c->r[i].lo <= c->r[o - 1].hi + 1) {
            if (c->r[i].hi > c->r[o - 1].hi) c->r[o - 1].hi = c->r[i].hi;
        } else {
            c->r[o++] = c->r[i];
        }
    }
    c->n = o;
    return true;
}

/* Replace c by its complement over [0, RX_MAX_CP] (c must be normalized). */
static bool cls_negate(rx_cls *c) {
    rx_cls n = {0};
    uint32_t next = 0;
    bool ok = true;
    for (size_t i = 0; i < c->n && ok; i++) {
        if (c->r[i].lo > next) ok = cls_add(&n, next, c->r[i].lo - 1);
        next = c->r[i].hi + 1;
    }
    if (ok && next <= RX_MAX_CP) ok = cls_add(&n, next, RX_MAX_CP);
    kl_free(c->r);
    *c = n;
    return ok;
}

/* Store a normalized class as a SET node. */
static int rx_set_node(rx_parser *p, rx_cls *c) {
    if (p->err) return -1;
    if (!rx_grow((void **)&p->ranges, &p->cap_ranges, p->n_ranges + c->n, sizeof *p->ranges) ||
        !rx_grow((void **)&p->sets, &p->cap_sets, p->n_sets + 1, sizeof *p->sets)) {
        p->err = "out of memory";
        return -1;
    }
    if (c->n) memcpy(p->ranges + p->n_ranges, c->r, c->n * sizeof *c->r);
    p->sets[p->n_sets] = (rx_set){p->n_ranges, c->n};
    p->n_ranges += c->n;
    int n = rx_node_new(p, RX_SET);
    if (n >= 0) p->nodes[n].set = (int)p->n_sets;
    p->n_sets++;
    return n;
}

/* Perl classes: d, s, w (upper case = negated, handled by caller). */
static bool cls_perl(rx_cls *c, int k) {
    switch (k) {
    case 'd': return cls_add(c, '0', '9');
    case 's':
        return cls_add(c, '\t', '\n') && cls_add(c, '\f', '\r') && cls_add(c, ' ', ' ');
    case 'w': return cls_add(c, '0', '9') && cls_add(c, 'A', 'Z') && cls_add(c, 'a', 'z') && cls_add(c, '_', '_');
    default: return false;
    }
}

/* Add class `k` negated into c (builds it separately, then merges). */
static bool cls_add_class(rx_cls *c, int k, bool neg) {
    rx_cls t = {0};
    bool ok = cls_perl(&t, k) && cls_normalize(&t, false) && (!neg || cls_negate(&t));
    for (size_t i = 0; ok && i < t.n; i++) ok = cls_add(c, t.r[i].lo, t.r[i].hi);
    kl_free(t.r);
    return ok;
}

/* ---- lexing helpers ----------------------------------------------------------------------- */

/* Decode one UTF-8 code point at *s (< end); invalid bytes give U+FFFD. */
static uint32_t utf8_next(const unsigned char **s, const unsigned char *end) {
    const unsigned char *p = *s;
    uint32_t c = *p;
    int n = c < 0x80 ? 0 : (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : -1;
    *s = p + 1;
    if (n == 0) return c;
    if (n < 0 || end - p <= n) return 0xFFFD;
    c &= n == 1 ? 0x1Fu : n == 2 ? 0x0Fu : 0x07u;
    for (int i = 1; i <= n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0xFFFD;
        c = (c << 6) | (p[i] & 0x3Fu);
    }
    *s = p + n + 1;
    return c > RX_MAX_CP ? 0xFFFD : c;
}

/* Value of a hex digit, -1 if ch is not one. */
static int hexval(int ch) {
    return ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
}

/* After a backslash: a single code point escape (not a class).  Returns
 * false with p->err set when the escape is not a literal. */
static bool rx_escape_char(rx_parser *p, uint32_t *out) {
    if (p->p >= p->end) {
        p->err = "trailing backslash";
        return false;
    }
    int ch = *p->p++;
    switch (ch) {
    case 'n': *out = '\n'; return true;
    case 't': *out = '\t'; return true;
    case 'r': *out = '\r'; return true;
    case 'f': *out = '\f'; return true;
    case 'v': *out = '\v'; return true;
    case 'a': *out = 7; return true;
    case '0': case '1': case '2': case '3': case '4': case '5': case '6': case '7': {
        if (ch != '0' && (p->p >= p->end || *p->p < '0' || *p->p > '7')) {
            p->err = "backreferences are not supported";
            return false;
        }
        uint32_t v = (uint32_t)(ch - '0');
        for (int i = 0; i < 2 && p->p < p->end && *p->p >= '0' && *p->p <= '7'; i++) v = v * 8 + (uint32_t)(*p->p++ - '0');
        *out = v;
        return true;
    }
    case 'x': {
        uint32_t v = 0;
        if (p->p < p->end && *p->p == '{') {
            p->p++;
            int nd = 0;
            while (p->p < p->end && hexval(*p->p) >= 0 && nd < 8) v = v * 16 + (uint32_t)hexval(*p->p++), nd++;
            if (p->p >= p->end || *p->p != '}' || nd == 0 || v > RX_MAX_CP) {
                p->err = "bad \\x{...} escape";
                return false;
            }
            p->p++;
        } else {
            for (int i = 0; i < 2; i++) {
                if (p->p >= p->end || hexval(*p->p) < 0) {
                    p->err = "bad \\x escape";
                    return false;
                }
                v = v * 16 + (uint32_t)hexval(*p->p++);
            }
        }
        *out = v;
        return true;
    }
    default:
        if (ch < 0x80 && !((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z'))) {
            *out = (uint32_t)ch;
            return true;
        }
        p->err = "unsupported escape sequence";
        return false;
    }
}

static const struct {
    const char *name;
    const char *ranges; /* pairs of lo, hi */
} rx_posix[] = {
    {"alnum", "09AZaz"}, {"alpha", "AZaz"}, {"ascii", "\x01\x7f"}, {"blank", "\t\t  "},
    {"cntrl", "\x01\x1f\x7f\x7f"}, {"digit", "09"}, {"graph", "!~"}, {"lower", "az"},
    {"print", " ~"}, {"punct", "!/:@[`{~"}, {"space", "\t\r  "}, {"upper", "AZ"},
    {"word", "09AZaz__"}, {"xdigit", "09AFaf"},
};

/* Parse a bracket class after '['. */
static int rx_parse_class(rx_parser *p) {
    rx_cls c = {0};
    bool neg = false, ok = true;
    if (p->p < p->end && *p->p == '^') neg = true, p->p++;
    bool first = true;
    while (ok && !p->err) {
        if (p->p >= p->end) {
            p->err = "missing ]";
            break;
        }
        if (*p->p == ']' && !first) {
            p->p++;
            break;
        }
        first = false;
        if (*p->p == '[' && p->p + 1 < p->end && p->p[1] == ':') {
            const unsigned char *q = p->p + 2;
            bool pneg = q < p->end && *q == '^';
            if (pneg) q++;
            const unsigned char *e = q;
            while (e + 1 < p->end && !(e[0] == ':' && e[1] == ']')) e++;
            if (e + 1 < p->end) {
                size_t len = (size_t)(e - q);
                size_t k = 0;
                for (; k < KL_ARRAY_LEN(rx_posix); k++)
                    if (strlen(rx_posix[k].name) == len && memcmp(rx_posix[k].name, q, len) == 0) break;
                if (k == KL_ARRAY_LEN(rx_posix)) {
                    p->err = "unknown POSIX class";
                    break;
                }
                rx_cls t = {0};
                const char *r = rx_posix[k].ranges;
                for (size_t j = 0; ok && r[j]; j += 2) ok = cls_add(&t, (unsigned char)r[j], (unsigned char)r[j + 1]);
                ok = ok && cls_normalize(&t, false) && (!pneg || cls_negate(&t));
                for (size_t j = 0; ok && j < t.n; j++) ok = cls_add(&c, t.r[j].lo, t.r[j].hi);
                kl_free(t.r);
                p->p = e + 2;
                continue;
            }
        }
        uint32_t lo;
        if (*p->p == '\\') {
            p->p++;
            if (p->p < p->end && strchr("dswDSW", *p->p) && *p->p) {
                int k = *p->p++;
                ok = cls_add_class(&c, k | 0x20, k < 'a');
                continue;
            }
            if (!rx_escape_char(p, &lo)) break;
        } else {
            lo = utf8_next(&p->p, p->end);
        }
        uint32_t hi = lo;
        if (p->p + 1 < p->end && *p->p == '-' && p->p[1] != ']') {
            p->p++;
            if (*p->p == '\\') {
                p->p++;
                if (!rx_escape_char(p, &hi)) break;
            } else {
                hi = utf8_next(&p->p, p->end);
            }
            if (hi < lo) {
                p->err = "bad character class range";
                break;
            }
        }
        ok = cls_add(&c, lo, hi);
    }
    if (!ok && !p->err) p->err = "out of memory";
    int n = -1;
    if (!p->err) {
        if (!cls_normalize(&c, p->flags & F_I) || (neg && !cls_negate(&c))) p->err = "out of memory";
        else n = rx_set_node(p, &c);
    }
    kl_free(c.r);
    return n;
}

/* SET node for [lo, hi] (negated when `neg`), case-folded under (?i). */
static int rx_single(rx_parser *p, uint32_t lo, uint32_t hi, bool neg) {
    rx_cls c = {0};
    int n = -1;
    if (!cls_add(&c, lo, hi) || !cls_normalize(&c, p->flags & F_I) || (neg && !cls_negate(&c))) p->err = "out of memory";
    else n = rx_set_node(p, &c);
    kl_free(c.r);
    return n;
}

/* Alternatives separated by |. */
static int rx_parse_alt(rx_parser *p);

/* ASSERT node of the given kind. */
static int rx_assert_node(rx_parser *p, int kind) {
    int n = rx_node_new(p, RX_ASSERT);
    if (n >= 0) p->nodes[n].as = kind;
    return n;
}

/* Concatenation of a and b (either may be -1 = nothing). */
static int rx_cat(rx_parser *p, int a, int b) {
    if (a < 0) return b;
    if (b < 0) return a;
    int n = rx_node_new(p, RX_CAT);
    if (n >= 0) p->nodes[n].a = a, p->nodes[n].b = b;
    return n;
}

/* Parse "(?flags)" or "(?flags:" after "(?"; returns 1 for a group with
 * flags (scoped), 0 for a flags-only item, -1 on error. */
static int rx_parse_flags(rx_parser *p) {
    bool neg = false;
    while (p->p < p->end) {
        int ch = *p->p++;
        unsigned f = ch == 'i' ? F_I : ch == 'm' ? F_M : ch == 's' ? F_S : ch == 'U' ? 8 : 0;
        if (f) {
            if (f != 8) p->flags = neg ? p->flags & ~f : p->flags | f;
            continue;
        }
        if (ch == '-' && !neg) {
            neg = true;
            continue;
        }
        if (ch == ')') return 0;
        if (ch == ':') return 1;
        break;
    }
    p->err = "bad (?flags) group";
    return -1;
}

/* One atom: group, class, ., ^, $, escape or literal; -2 for a flags-only group "(?i)". */
static int rx_parse_atom(rx_parser *p) {
    int ch = *p->p;
    if (ch == '(') {
        p->p++;
        unsigned saved = p->flags;
        if (p->p < p->end && *p->p == '?') {
            p->p++;
            if (p->p < p->end && (*p->p == 'P' || *p->p == '<')) {
                if (*p->p == 'P') p->p++;
                if (p->p >= p->end || *p->p != '<') {
                    p->err = "bad named group";
                    return -1;
                }
                while (p->p < p->end && *p->p != '>') p->p++;
                if (p->p >= p->end) {
                    p->err = "bad named group";
                    return -1;
                }
                p->p++;
            } else {
                int r = rx_parse_flags(p);
                if (r < 0) return -1;
                if (r == 0) return -2; /* flags changed for the rest of the enclosing group */
            }
        }
        if (++p->depth > 1000) {
            p->err = "groups nested too deep";
            return -1;
        }
        int n = rx_parse_alt(p);
        p->depth--;
        p->flags = saved;
        if (p->err) return -1;
        if (p->p >= p->end || *p->p != ')') {
            p->err = "missing )";
            return -1;
        }
        p->p++;
        return n >= 0 ? n : rx_node_new(p, RX_EMPTY);
    }
    if (ch == '[') {
        p->p++;
        return rx_parse_class(p);
    }
    if (ch == '.') {
        p->p++;
        return p->flags & F_S ? rx_single(p, 0, RX_MAX_CP, false) : rx_single(p, '\n', '\n', true);
    }
    if (ch == '^') {
        p->p++;
        return rx_assert_node(p, p->flags & F_M ? AS_BOL : AS_BOT);
    }
    if (ch == '$') {
        p->p++;
        return rx_assert_node(p, p->flags & F_M ? AS_EOL : AS_EOT);
    }
    if (ch == '*' || ch == '+' || ch == '?') {
        p->err = "missing argument to repetition operator";
        return -1;
    }
    if (ch == '\\') {
        p->p++;
        if (p->p >= p->end) {
            p->err = "trailing backslash";
            return -1;
        }
        int e = *p->p;
        if (strchr("dswDSW", e) && e) {
            p->p++;
            rx_cls c = {0};
            int n = -1;
            if (!cls_add_class(&c, e | 0x20, e < 'a') || !cls_normalize(&c, false)) p->err = "out of memory";
            else n = rx_set_node(p, &c);
            kl_free(c.r);
            return n;
        }
        if (e == 'b' || e == 'B' || e == 'A' || e == 'z') {
            p->p++;
            return rx_assert_node(p, e == 'b' ? AS_WORD : e == 'B' ? AS_NWORD : e == 'A' ? AS_BOT : AS_EOT);
        }
        if (e == 'Q') {
            p->p++;
            int n = -1;
            while (p->p < p->end && !p->err) {
                if (*p->p == '\\' && p->p + 1 < p->end && p->p[1] == 'E') {
                    p->p += 2;
                    break;
                }
                uint32_t cp = utf8_next(&p->p, p->end);
                n = rx_cat(p, n, rx_single(p, cp, cp, false));
            }
            return n >= 0 ? n : rx_node_new(p, RX_EMPTY);
        }
        if (e == 'p' || e == 'P') {
            p->err = "Unicode classes (\\p) are not supported";
            return -1;
        }
        uint32_t cp;
        if (!rx_escape_char(p, &cp)) return -1;
        return rx_single(p, cp, cp, false);
    }
    uint32_t cp = utf8_next(&p->p, p->end);
    return rx_single(p, cp, cp, false);
}

/* Parse "{n}", "{n,}", "{n,m}" at p->p; false (p->p unchanged) if it is
 * not a repetition (then '{' is a literal, as in RE2). */
static bool rx_parse_braces(rx_parser *p, int *mn, int *mx) {
    const unsigned char *q = p->p + 1;
    long a = 0, b;
    int nd = 0;
    while (q < p->end && *q >= '0' && *q <= '9' && nd < 8) a = a * 10 + (*q++ - '0'), nd++;
    if (!nd) return false;
    b = a;
    if (q < p->end && *q == ',') {
        q++;
        if (q < p->end && *q == '}') b = -1;
        else {
            b = 0, nd = 0;
            while (q < p->end && *q >= '0' && *q <= '9' && nd < 8) b = b * 10 + (*q++ - '0'), nd++;
            if (!nd) return false;
        }
    }
    if (q >= p->end || *q != '}') return false;
    p->p = q + 1;
    *mn = (int)KL_MIN(a, 100000L);
    *mx = b < 0 ? -1 : (int)KL_MIN(b, 100000L);
    return true;
}

/* An atom followed by any repetition operators. */
static int rx_parse_repeat(rx_parser *p) {
    int n = rx_parse_atom(p);
    if (n == -2 || n < 0) return n;
    while (p->p < p->end && !p->err) {
        int ch = *p->p, mn, mx;
        if (ch == '*') mn = 0, mx = -1, p->p++;
        else if (ch == '+') mn = 1, mx = -1, p->p++;
        else if (ch == '?') mn = 0, mx = 1, p->p++;
        else if (ch == '{' && rx_parse_braces(p, &mn, &mx)) {
            if (mn > RX_MAX_REPEAT || mx > RX_MAX_REPEAT || (mx >= 0 && mx < mn)) {
                p->err = "bad repetition count";
                return -1;
            }
        } else break;
        if (p->p < p->end && *p->p == '?') p->p++; /* lazy: same language */
        if (p->p < p->end && (*p->p == '*' || *p->p == '+' || *p->p == '?')) {
            p->err = "bad repetition operator"; /* RE2 rejects a** and friends */
            return -1;
        }
        int r = rx_node_new(p, RX_REP);
        if (r < 0) return -1;
        p->nodes[r].a = n, p->nodes[r].min = mn, p->nodes[r].max = mx;
        n = r;
    }
    return n;
}

/* A concatenation up to | or ) (EMPTY node when there is nothing). */
static int rx_parse_cat(rx_parser *p) {
    int n = -1;
    while (p->p < p->end && !p->err && *p->p != '|' && *p->p != ')') {
        int a = rx_parse_repeat(p);
        if (a == -2) continue;
        if (a < 0) return -1;
        n = rx_cat(p, n, a);
    }
    return n >= 0 || p->err ? n : rx_node_new(p, RX_EMPTY);
}

/* Alternatives separated by |. */
static int rx_parse_alt(rx_parser *p) {
    int n = rx_parse_cat(p);
    while (!p->err && p->p < p->end && *p->p == '|') {
        p->p++;
        int b = rx_parse_cat(p);
        if (b < 0) return -1;
        int a = rx_node_new(p, RX_ALT);
        if (a < 0) return -1;
        p->nodes[a].a = n, p->nodes[a].b = b;
        n = a;
    }
    return n;
}

/* ---- compiler -------------------------------------------------------------------------------- */

typedef struct rx_comp {
    const rx_parser *p;
    rx_inst *prog;
    size_t n, cap;
    bool fail;
} rx_comp;

/* Append an instruction; sets c->fail when the program grows too large. */
static int rx_emit(rx_comp *c, int op, int x, int y) {
    if (c->fail) return 0;
    if (c->n >= RX_MAX_PROG || !rx_grow((void **)&c->prog, &c->cap, c->n + 1, sizeof *c->prog)) {
        c->fail = true;
        return 0;
    }
    c->prog[c->n] = (rx_inst){op, x, y};
    return (int)c->n++;
}

/* Emit the program for AST node id (Thompson construction; counted repeats unrolled). */
static void rx_compile_node(rx_comp *c, int id, int depth) {
    if (c->fail || id < 0) return;
    if (depth > 10000) {
        c->fail = true;
        return;
    }
    const rx_node *nd = &c->p->nodes[id];
    switch (nd->kind) {
    case RX_EMPTY: break;
    case RX_SET: rx_emit(c, OP_CHAR, nd->set, 0); break;
    case RX_ASSERT: rx_emit(c, OP_ASSERT, nd->as, 0); break;
    case RX_CAT: {
        /* Concatenations are left-deep chains: walk the spine without recursion. */
        size_t cnt = 0;
        int k = id;
        for (; c->p->nodes[k].kind == RX_CAT; k = c->p->nodes[k].a) cnt++;
        int *spine = kl_misc_calloc((int64_t)cnt, sizeof *spine);
        if (!spine) {
            c->fail = true;
            return;
        }
        k = id;
        for (size_t i = cnt; i-- > 0; k = c->p->nodes[k].a) spine[i] = k;
        rx_compile_node(c, k, depth + 1);
        for (size_t i = 0; i < cnt && !c->fail; i++) rx_compile_node(c, c->p->nodes[spine[i]].b, depth + 1);
        kl_free(spine);
        break;
    }
    case RX_ALT: {
        int sp = rx_emit(c, OP_SPLIT, 0, 0);
        c->prog[sp].x = (int)c->n;
        rx_compile_node(c, nd->a, depth + 1);
        int j = rx_emit(c, OP_JMP, 0, 0);
        if (c->fail) return;
        c->prog[sp].y = (int)c->n;
        rx_compile_node(c, nd->b, depth + 1);
        if (c->fail) return;
        c->prog[j].x = (int)c->n;
        break;
    }
    case RX_REP: {
        for (int i = 0; i < nd->min && !c->fail; i++) rx_compile_node(c, nd->a, depth + 1);
        if (nd->max < 0) {
            int sp = rx_emit(c, OP_SPLIT, 0, 0);
            if (c->fail) return;
            c->prog[sp].x = (int)c->n;
            rx_compile_node(c, nd->a, depth + 1);
            rx_emit(c, OP_JMP, sp, 0);
            if (c->fail) return;
            c->prog[sp].y = (int)c->n;
        } else {
            size_t first = c->n;
            for (int i = nd->min; i < nd->max && !c->fail; i++) {
                int sp = rx_emit(c, OP_SPLIT, 0, -1);
                if (c->fail) return;
                c->prog[sp].x = (int)c->n;
                rx_compile_node(c, nd->a, depth + 1);
            }
            if (c->fail) return;
            for (size_t k = first; k < c->n; k++)
                if (c->prog[k].op == OP_SPLIT && c->prog[k].y == -1) c->prog[k].y = (int)c->n;
        }
        break;
    }
    }
}

/* Parse and compile a pattern (see misc.h). */
kiln_status kl_regex_compile(const char *pattern, size_t len, kl_regex **out) {
    rx_parser p = {.p = (const unsigned char *)pattern, .end = (const unsigned char *)pattern + len};
    int root = rx_parse_alt(&p);
    if (!p.err && p.p < p.end) p.err = *p.p == ')' ? "unexpected )" : "unexpected character";
    if (!p.err && root < 0) p.err = "invalid pattern";
    kiln_status s = KILN_OK;
    kl_regex *re = NULL;
    rx_comp c = {.p = &p};
    if (!p.err) {
        rx_compile_node(&c, root, 0);
        rx_emit(&c, OP_MATCH, 0, 0);
        if (c.fail) p.err = "pattern is too large";
    }
    if (!p.err) {
        re = kl_calloc(1, sizeof *re);
        if (!re) s = KILN_ERR_NO_MEMORY;
    }
    if (p.err) s = kl_errorf(KILN_ERR_INVALID_MODEL, "regex pattern '%.*s': %s", (int)KL_MIN(len, 200), pattern, p.err);
    if (s) {
        kl_free(c.prog);
        kl_free(p.ranges);
        kl_free(p.sets);
    } else {
        re->prog = c.prog, re->n_prog = c.n, re->ranges = p.ranges, re->sets = p.sets;
        *out = re;
    }
    kl_free(p.nodes);
    return s;
}

/* Release a compiled pattern; NULL is a no-op. */
void kl_regex_free(kl_regex *re) {
    if (!re) return;
    kl_free(re->prog);
    kl_free(re->ranges);
    kl_free(re->sets);
    kl_free(re);
}

/* ---- Pike VM ------------------------------------------------------------------------------------ */

static bool rx_in_set(const kl_regex *re, int set, uint32_t ch) {
    const rx_range *r = re->ranges + re->sets[set].off;
    size_t lo = 0, hi = re->sets[set].n;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ch < r[mid].lo) hi = mid;
        else if (ch > r[mid].hi) lo = mid + 1;
        else return true;
    }
    return false;
}

/* RE2 \w (ASCII word character); -1 (a text edge) is not one. */
static bool rx_is_word(int64_t ch) {
    return ch >= 0 && ((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_');
}

/* Does assertion `kind` hold between code points prev and next (-1 = edge)? */
static bool rx_assert(int kind, int64_t prev, int64_t next) {
    switch (kind) {
    case AS_BOT: return prev < 0;
    case AS_EOT: return next < 0;
    case AS_BOL: return prev < 0 || prev == '\n';
    case AS_EOL: return next < 0 || next == '\n';
    case AS_WORD: return rx_is_word(prev) != rx_is_word(next);
    case AS_NWORD: return rx_is_word(prev) == rx_is_word(next);
    default: return false;
    }
}

typedef struct rx_list {
    int *dense;    /* pcs in the list, in order */
    int *sparse;   /* pc -> index in dense */
    size_t n;
} rx_list;

/* Is pc already in thread list l? */
static bool rx_has(const rx_list *l, int pc) {
    int i = l->sparse[pc];
    return i >= 0 && (size_t)i < l->n && l->dense[i] == pc;
}

/* Add pc and its epsilon closure at a position between prev and next. */
static void rx_add(const kl_regex *re, rx_list *l, int pc, int *stack, int64_t prev, int64_t next) {
    size_t top = 0;
    stack[top++] = pc;
    while (top) {
        pc = stack[--top];
        if (rx_has(l, pc)) continue;
        l->sparse[pc] = (int)l->n;
        l->dense[l->n++] = pc;
        const rx_inst *in = &re->prog[pc];
        switch (in->op) {
        case OP_JMP: stack[top++] = in->x; break;
        case OP_SPLIT:
            stack[top++] = in->y;
            stack[top++] = in->x;
            break;
        case OP_ASSERT:
            if (rx_assert(in->x, prev, next)) stack[top++] = pc + 1;
            break;
        default: break;
        }
    }
}

/* Pike VM over the code points of s, anchored at both ends (see misc.h). */
kiln_status kl_regex_full_match(const kl_regex *re, const char *s, size_t len, bool *out) {
    *out = false;
    size_t np = re->n_prog;
    /* Two thread lists and a stack: each closure expands a pc at most once
     * and pushes at most two successors, so 2 * np + 1 entries suffice. */
    int *buf = kl_misc_calloc((int64_t)np, 7 * sizeof(int));
    if (!buf) return KILN_ERR_NO_MEMORY;
    rx_list a = {buf, buf + np, 0}, b = {buf + 2 * np, buf + 3 * np, 0};
    int *stack2 = buf + 4 * np;
    for (size_t i = 0; i < np; i++) a.sparse[i] = b.sparse[i] = -1;
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    int64_t prev = -1;
    int64_t cur = p < end ? (int64_t)utf8_next(&p, end) : -1;
    rx_list *cl = &a, *nl = &b;
    rx_add(re, cl, 0, stack2, prev, cur);
    while (cur >= 0 && cl->n) {
        int64_t next = p < end ? (int64_t)utf8_next(&p, end) : -1;
        nl->n = 0;
        for (size_t i = 0; i < cl->n; i++) {
            const rx_inst *in = &re->prog[cl->dense[i]];
            if (in->op == OP_CHAR && rx_in_set(re, in->x, (uint32_t)cur))
                rx_add(re, nl, cl->dense[i] + 1, stack2, cur, next);
        }
        rx_list *t = cl;
        cl = nl, nl = t;
        prev = cur, cur = next;
    }
    if (cur < 0)
        for (size_t i = 0; i < cl->n; i++)
            if (re->prog[cl->dense[i]].op == OP_MATCH) *out = true;
    kl_free(buf);
    return KILN_OK;
}
