/* kiln_session_options and kiln_session: option parsing, session creation
 * (refuses models with check errors) and input/output validation for runs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/runtime.h"
#include "runtime/exec.h"

static const char *const kl_known_providers[] = {"cpu", "cuda"};

/* ---- options ------------------------------------------------------------------- */

KILN_API kiln_status kiln_session_options_create(kiln_session_options **out) {
    if (!out)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_session_options_create: out is NULL");
    kiln_session_options *o = kl_calloc(1, sizeof *o);
    if (!o) return KILN_ERR_NO_MEMORY;
    *out = o;
    return KILN_OK;
}

KILN_API void kiln_session_options_destroy(kiln_session_options *options) { kl_free(options); }

/* Index of provider `name` (len bytes) in kl_known_providers, or -1. */
static int kl_provider_index(const char *name, size_t len) {
    for (size_t i = 0; i < KL_ARRAY_LEN(kl_known_providers); i++)
        if (strlen(kl_known_providers[i]) == len && memcmp(kl_known_providers[i], name, len) == 0)
            return (int)i;
    return -1;
}

/* Add known provider `idx` to `o` unless already listed. */
static void kl_provider_add(kiln_session_options *o, int idx) {
    const char *name = kl_known_providers[idx];
    for (int i = 0; i < o->n_providers; i++)
        if (strcmp(o->providers[i], name) == 0) return;
    if (o->n_providers < KL_MAX_PROVIDERS)
        snprintf(o->providers[o->n_providers++], sizeof o->providers[0], "%s", name);
}

/* Error for an unknown provider name of `len` bytes. */
static kiln_status kl_provider_unknown(const char *fn, const char *name, size_t len) {
    return kl_errorf(KILN_ERR_NOT_FOUND, "%s: unknown provider '%.*s' (known: cpu, cuda)", fn,
                     (int)KL_MIN(len, 200), name);
}

KILN_API kiln_status kiln_session_options_append_provider(kiln_session_options *options,
                                                          const char *provider) {
    const char *fn = "kiln_session_options_append_provider";
    if (!options || !provider)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                         !options ? "options" : "provider");
    int idx = kl_provider_index(provider, strlen(provider));
    if (idx < 0) return kl_provider_unknown(fn, provider, strlen(provider));
    kl_provider_add(options, idx);
    return KILN_OK;
}

KILN_API kiln_status kiln_session_options_set_threads(kiln_session_options *options,
                                                      int threads) {
    if (!options)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT,
                         "kiln_session_options_set_threads: options is NULL");
    if (threads < 0)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT,
                         "kiln_session_options_set_threads: threads is %d, must be >= 0 "
                         "(0 = one per core)", threads);
    options->threads = threads;
    return KILN_OK;
}

/* Replace the provider list with the comma-separated `list` (spaces around
 * names ignored); nothing changes unless every name is known. */
static kiln_status kl_options_set_providers(kiln_session_options *o, const char *list) {
    const char *fn = "kiln_session_options_set";
    kiln_session_options tmp = *o;
    tmp.n_providers = 0;
    const char *p = list;
    for (;;) {
        const char *end = strchr(p, ',');
        size_t len = end ? (size_t)(end - p) : strlen(p);
        const char *s = p;
        while (len > 0 && (*s == ' ' || *s == '\t')) s++, len--;
        while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t')) len--;
        if (len == 0)
            return kl_errorf(KILN_ERR_INVALID_ARGUMENT,
                             "%s: providers: empty name in '%s' (expected e.g. 'cuda,cpu')", fn,
                             list);
        int idx = kl_provider_index(s, len);
        if (idx < 0) return kl_provider_unknown(fn, s, len);
        kl_provider_add(&tmp, idx);
        if (!end) break;
        p = end + 1;
    }
    *o = tmp;
    return KILN_OK;
}

KILN_API kiln_status kiln_session_options_set(kiln_session_options *options, const char *key,
                                              const char *value) {
    const char *fn = "kiln_session_options_set";
    if (!options || !key || !value)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%s: %s is NULL", fn,
                         !options ? "options" : !key ? "key" : "value");
    if (strcmp(key, "threads") == 0) {
        char *end;
        errno = 0;
        long v = strtol(value, &end, 10);
        if (end == value || *end || errno || v < 0 || v > 1 << 20)
            return kl_errorf(KILN_ERR_INVALID_ARGUMENT,
                             "%s: threads: '%s' is not a thread count (0 = one per core)", fn,
                             value);
        options->threads = (int)v;
        return KILN_OK;
    }
    if (strcmp(key, "providers") == 0) return kl_options_set_providers(options, value);
    return kl_errorf(KILN_ERR_NOT_FOUND, "%s: unknown key '%s' (known keys: threads, providers)",
                     fn, key);
}

/* ---- sessions ------------------------------------------------------------------ */

KILN_API kiln_status kiln_session_create(const kiln_model *model,
                                         const kiln_session_options *options,
                                         kiln_session **out) {
    if (!model || !out)
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_session_create: %s is NULL",
                         !model ? "model" : "out");
    kl_check_result *r = NULL;
    KL_TRY(kl_check_model(model->ir, &r));
    if (r->n_errors > 0) {
        const char *first = "";
        for (size_t i = 0; i < r->n; i++)
            if (r->items[i].severity == KILN_CHECK_ERROR) {
                first = r->items[i].message ? r->items[i].message : "";
                break;
            }
        kl_errorf(KILN_ERR_INVALID_MODEL, "%s: the model breaks ONNX rules (%zu error%s; first: %s)",
                  model->ir->path ? model->ir->path : "<model>", r->n_errors,
                  r->n_errors == 1 ? "" : "s", first);
        kl_check_free(r);
        return KILN_ERR_INVALID_MODEL;
    }
    kl_check_free(r);
    kiln_session *s = kl_calloc(1, sizeof *s);
    if (!s) return KILN_ERR_NO_MEMORY;
    s->model = model;
    if (options) s->options = *options;
    if (s->options.n_providers == 0) kl_provider_add(&s->options, 0);
    kiln_status st = kl_program_create(model->ir, s->options.threads, &s->plan);
    if (st) {
        kl_error_context(st, "%s: ", model->ir->path ? model->ir->path : "<model>");
        kl_free(s);
        return st;
    }
    *out = s;
    return KILN_OK;
}

KILN_API void kiln_session_destroy(kiln_session *session) {
    if (!session) return;
    kl_program_free(session->plan);
    kl_free(session);
}

/* ---- run-time validation ----------------------------------------------------------- */

/* A symbolic dimension bound by a caller's tensor during validation. */
typedef struct kl_symbind {
    const char *param;
    int64_t value;
    const char *by; /* name of the input that set it */
} kl_symbind;

typedef struct kl_symtab {
    kl_symbind *items;
    size_t n, cap;
} kl_symtab;

/* Write "'a', 'b'" (the names of `vals`, skipping NULL) into buf. */
static const char *kl_name_list(kl_value *const *vals, size_t n, char *buf, size_t size) {
    size_t pos = 0, shown = 0;
    buf[0] = 0;
    for (size_t i = 0; i < n; i++) {
        if (!vals[i]) continue;
        if (pos + strlen(vals[i]->name) + 8 > size - 16) {
            snprintf(buf + pos, size - pos, ", ... (%zu more)", n - shown);
            return buf;
        }
        int w = snprintf(buf + pos, size - pos, "%s'%s'", shown ? ", " : "", vals[i]->name);
        if (w > 0) pos += (size_t)w;
        shown++;
    }
    if (shown == 0) snprintf(buf, size, "none");
    return buf;
}

/* Check tensor `t` against the declared type of value `v` (`what` is
 * "input" or "output"), binding symbolic dims in `tab`.  `bind` allows new
 * bindings (inputs); outputs only check against existing ones. */
static kiln_status kl_validate_tensor(const kl_value *v, const kiln_tensor *t, const char *what,
                                      kl_symtab *tab, bool bind) {
    char tb[256];
    const kl_type *ty = &v->type;
    if (ty->kind == KL_TYPE_UNKNOWN) return KILN_OK;
    if (ty->kind != KL_TYPE_TENSOR)
        return kl_errorf(KILN_ERR_UNSUPPORTED,
                         "%s '%s' is %s; only dense tensors can be passed through the API yet",
                         what, v->name, kl_type_format(ty, tb, sizeof tb));
    if (ty->elem != KILN_DTYPE_UNDEFINED && ty->elem != t->dtype)
        return kl_errorf(KILN_ERR_TYPE, "%s '%s' has element type %s but the model expects %s",
                         what, v->name, kiln_dtype_name(t->dtype), kiln_dtype_name(ty->elem));
    if (ty->shape.rank < 0) return KILN_OK;
    if (ty->shape.rank != t->rank)
        return kl_errorf(KILN_ERR_SHAPE, "%s '%s' has rank %d but the model expects rank %d (%s)",
                         what, v->name, t->rank, ty->shape.rank,
                         kl_type_format(ty, tb, sizeof tb));
    for (int a = 0; a < t->rank; a++) {
        const kl_dim *d = &ty->shape.dims[a];
        int64_t got = t->shape[a];
        if (d->value >= 0) {
            if (got != d->value)
                return kl_errorf(KILN_ERR_SHAPE, "%s '%s' axis %d is %lld but the model expects %lld (%s)",
                                 what, v->name, a, (long long)got, (long long)d->value,
                                 kl_type_format(ty, tb, sizeof tb));
            continue;
        }
        if (!d->param || !*d->param) continue;
        size_t k = 0;
        while (k < tab->n && strcmp(tab->items[k].param, d->param) != 0) k++;
        if (k < tab->n) {
            if (tab->items[k].value != got)
                return kl_errorf(KILN_ERR_SHAPE, "%s '%s' axis %d ('%s') is %lld but input '%s' set %s = %lld",
                                 what, v->name, a, d->param, (long long)got, tab->items[k].by,
                                 d->param, (long long)tab->items[k].value);
        } else if (bind && tab->n < tab->cap) {
            tab->items[tab->n++] = (kl_symbind){d->param, got, v->name};
        }
    }
    return KILN_OK;
}

/* Bind caller inputs to graph inputs and validate them; fills bound[]
 * (indexed like g->inputs) and the symbol table. */
static kiln_status kl_validate_inputs(const kl_graph *g, const kiln_model *m,
                                      const char *const *names, const kiln_tensor *const *inputs,
                                      size_t count, const kiln_tensor **bound, kl_symtab *tab) {
    char list[512];
    for (size_t i = 0; i < count; i++) {
        if (!names[i])
            return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_session_run: input_names[%zu] is NULL", i);
        if (!inputs[i])
            return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_session_run: inputs[%zu] ('%s') is NULL",
                             i, names[i]);
        size_t j = 0;
        while (j < g->n_inputs && !(g->inputs[j] && strcmp(g->inputs[j]->name, names[i]) == 0)) j++;
        if (j == g->n_inputs) {
            const kl_value *v = kl_strmap_get(&g->by_name, names[i]);
            if (v && (v->flags & KL_VALUE_INITIALIZER))
                return kl_errorf(KILN_ERR_NOT_FOUND,
                                 "unknown input '%s': it is an initializer, not a graph input "
                                 "(the model's inputs are %s)", names[i],
                                 kl_name_list(m->inputs, m->n_inputs, list, sizeof list));
            return kl_errorf(KILN_ERR_NOT_FOUND, "unknown input '%s' (the model's inputs are %s)",
                             names[i], kl_name_list(m->inputs, m->n_inputs, list, sizeof list));
        }
        if (bound[j])
            return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "input '%s' is given more than once", names[i]);
        bound[j] = inputs[i];
    }
    for (size_t j = 0; j < g->n_inputs; j++) {
        const kl_value *v = g->inputs[j];
        if (!v) continue;
        if (!bound[j]) {
            if (v->flags & KL_VALUE_INITIALIZER) continue;
            char tb[256];
            return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "input '%s' (%s) is not given", v->name,
                             kl_type_format(&v->type, tb, sizeof tb));
        }
        KL_TRY(kl_validate_tensor(v, bound[j], "input", tab, true));
    }
    return KILN_OK;
}

/* Validate requested output names and any caller-provided output tensors. */
static kiln_status kl_validate_outputs(const kl_graph *g, const char *const *names,
                                       kiln_tensor **outputs, size_t count, kl_symtab *tab) {
    char list[512];
    for (size_t i = 0; i < count; i++) {
        if (!names[i])
            return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "kiln_session_run: output_names[%zu] is NULL", i);
        size_t j = 0;
        while (j < g->n_outputs && !(g->outputs[j] && strcmp(g->outputs[j]->name, names[i]) == 0)) j++;
        if (j == g->n_outputs)
            return kl_errorf(KILN_ERR_NOT_FOUND, "unknown output '%s' (the model's outputs are %s)",
                             names[i], kl_name_list(g->outputs, g->n_outputs, list, sizeof list));
        for (size_t k = 0; k < i; k++)
            if (strcmp(names[k], names[i]) == 0)
                return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "output '%s' is requested more than once",
                                 names[i]);
        if (outputs[i]) KL_TRY(kl_validate_tensor(g->outputs[j], outputs[i], "output", tab, false));
    }
    return KILN_OK;
}

/* Copy runtime value r (graph output `name`) into the caller's tensor *dst,
 * creating it when NULL. */
static kiln_status kl_output_copy(const kl_rt *r, const char *name, kiln_tensor **dst) {
    char a[128];
    if (r->kind != KL_RT_TENSOR || r->dtype == KILN_DTYPE_STRING)
        return kl_errorf(KILN_ERR_UNSUPPORTED, "output '%s' is %s; only numeric tensors can be returned through the API yet",
                         name, kl_rt_describe(r, a, sizeof a));
    kiln_tensor *t = *dst;
    if (!t) {
        KL_TRY(kiln_tensor_create(r->dtype, r->dims, r->rank, &t));
    } else if (t->dtype != r->dtype || t->rank != r->rank ||
               memcmp(t->shape, r->dims, (size_t)r->rank * sizeof r->dims[0]) != 0) {
        return kl_errorf(KILN_ERR_SHAPE, "output '%s' is %s but the tensor given for it does not match", name,
                         kl_rt_describe(r, a, sizeof a));
    }
    if (r->nbytes) memcpy(t->data, r->data, r->nbytes);
    *dst = t;
    return KILN_OK;
}

/* Run the plan on validated inputs (bound[] indexed like g->inputs) and
 * deliver the requested outputs. */
static kiln_status kl_session_execute(kiln_session *session, const kl_graph *g, const kiln_tensor **bound,
                                      const char *const *output_names, kiln_tensor **outputs,
                                      size_t output_count) {
    size_t ni = g->n_inputs, no = g->n_outputs;
    kl_rt **in = kl_calloc(ni ? ni : 1, sizeof *in), **out = kl_calloc(no ? no : 1, sizeof *out);
    kiln_tensor **made = kl_calloc(output_count ? output_count : 1, sizeof *made);
    kiln_status s = in && out && made ? KILN_OK : KILN_ERR_NO_MEMORY;
    for (size_t j = 0; j < ni && !s; j++) {
        const kiln_tensor *t = bound[j];
        if (!t) continue;
        size_t align = kiln_dtype_bits(t->dtype) / 8;
        if (align > 1 && ((uintptr_t)t->data % align) != 0) { /* kernels read typed pointers */
            s = kl_rt_tensor(t->dtype, t->rank, t->shape, &in[j]);
            if (!s && t->nbytes) memcpy(in[j]->data, t->data, t->nbytes);
        } else {
            s = kl_rt_tensor_view(t->dtype, t->rank, t->shape, t->data, t->nbytes, &in[j]);
        }
    }
    if (!s) s = kl_program_run(session->plan, in, ni, out, no);
    for (size_t i = 0; i < output_count && !s; i++) {
        size_t j = 0;
        while (j < no && strcmp(g->outputs[j]->name, output_names[i]) != 0) j++;
        made[i] = outputs[i];
        s = kl_output_copy(out[j], output_names[i], &made[i]);
    }
    if (!s)
        for (size_t i = 0; i < output_count; i++) outputs[i] = made[i];
    else
        for (size_t i = 0; made && i < output_count; i++)
            if (made[i] != outputs[i]) kiln_tensor_destroy(made[i]);
    for (size_t j = 0; in && j < ni; j++) kl_rt_unref(in[j]);
    for (size_t j = 0; out && j < no; j++) kl_rt_unref(out[j]);
    kl_free(in);
    kl_free(out);
    kl_free(made);
    return s;
}

KILN_API kiln_status kiln_session_run(kiln_session *session, const char *const *input_names,
                                      const kiln_tensor *const *inputs, size_t input_count,
                                      const char *const *output_names, kiln_tensor **outputs,
                                      size_t output_count) {
    const char *fn = "kiln_session_run";
    if (!session) return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%s: session is NULL", fn);
    if (input_count > 0 && (!input_names || !inputs))
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%s: %s is NULL with input_count %zu", fn,
                         !input_names ? "input_names" : "inputs", input_count);
    if (output_count > 0 && (!output_names || !outputs))
        return kl_errorf(KILN_ERR_INVALID_ARGUMENT, "%s: %s is NULL with output_count %zu", fn,
                         !output_names ? "output_names" : "outputs", output_count);
    const kl_graph *g = session->model->ir->graph;
    if (!g) return kl_errorf(KILN_ERR_INVALID_MODEL, "%s: the model has no graph", fn);

    size_t n_dims = 0;
    for (size_t j = 0; j < g->n_inputs; j++)
        if (g->inputs[j] && g->inputs[j]->type.shape.rank > 0)
            n_dims += (size_t)g->inputs[j]->type.shape.rank;
    const kiln_tensor **bound = kl_calloc(g->n_inputs ? g->n_inputs : 1, sizeof *bound);
    kl_symtab tab = {kl_calloc(n_dims ? n_dims : 1, sizeof(kl_symbind)), 0, n_dims};
    kiln_status s = KILN_ERR_NO_MEMORY;
    if (!bound || !tab.items) goto out_free;
    s = kl_validate_inputs(g, session->model, input_names, inputs, input_count, bound, &tab);
    if (s != KILN_OK) goto out_free;
    s = kl_validate_outputs(g, output_names, outputs, output_count, &tab);
    if (s != KILN_OK) goto out_free;
    s = kl_session_execute(session, g, bound, output_names, outputs, output_count);
out_free:
    kl_free(tab.items);
    kl_free(bound);
    return s;
}
