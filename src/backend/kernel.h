/*
 * kernel.h — what a kernel sees: runtime values (tensors, sequences,
 * optionals), the kernel context, and the kernel registry rows.
 *
 * A kernel reads its node's attributes through the IR helpers
 * (kl_node_attr_int ...), reads inputs from ctx->in[i] (NULL when an
 * optional input is omitted), creates each output with kl_kctx_output() (or
 * kl_kctx_set_output() for sequences/optionals/aliases) and returns a
 * status whose message names what is wrong; the executor prefixes the node.
 * Backends never include src/onnx/.
 */
#ifndef KL_KERNEL_H
#define KL_KERNEL_H

#include "ir/ir.h"

/* ---- runtime values -------------------------------------------------------- */

typedef enum kl_rt_kind {
    KL_RT_TENSOR = 0,
    KL_RT_SEQUENCE = 1,
    KL_RT_NONE = 2 /* an optional without a value */
} kl_rt_kind;

/* A runtime value.  Tensors: dense, row-major, data 64-byte aligned when
 * owned.  Sub-byte types (int4/uint4/int2/uint2/float4) are packed as in
 * ONNX (low bits first); bool is one byte (0/1).  String tensors: data is an
 * array of `count` kl_str whose bytes are owned by the value.
 * Values are reference counted: kl_rt_ref / kl_rt_unref. */
typedef struct kl_rt {
    kl_rt_kind kind;
    kiln_dtype dtype;     /* tensor: element type; sequence: element type (may be UNDEFINED) */
    int rank;
    int64_t dims[KILN_MAX_RANK];
    int64_t count;        /* product of dims */
    void *data;
    size_t nbytes;
    bool owns_data;       /* free data (and string bytes) on release */
    struct kl_rt **items; /* sequence elements (each holds a reference) */
    size_t n_items;
    kl_type_kind opt_of;  /* for KL_RT_NONE: the optional's element kind */
    int refs;
    bool pooled;          /* header owned by an execution context: not freed at refs 0 */
} kl_rt;

/* New tensor with owned, zeroed storage (strings: n empty strings). */
kiln_status kl_rt_tensor(kiln_dtype dtype, int rank, const int64_t *dims, kl_rt **out);
/* The same without zeroing the data (for kernels that write every element;
 * strings are still cleared). */
kiln_status kl_rt_tensor_uninit(kiln_dtype dtype, int rank, const int64_t *dims, kl_rt **out);
/* New tensor over borrowed memory (not freed). */
kiln_status kl_rt_tensor_view(kiln_dtype dtype, int rank, const int64_t *dims, void *data, size_t nbytes,
                              kl_rt **out);
/* Initialize a pooled header (owned by an execution context) as a view
 * over data (nbytes at least the tensor's size); allocates nothing. */
kiln_status kl_rt_view_init(kl_rt *v, kiln_dtype dtype, int rank, const int64_t *dims, void *data, size_t nbytes);
/* New sequence (takes references to the n items). */
kiln_status kl_rt_sequence(kiln_dtype elem, kl_rt **items, size_t n, kl_rt **out);
/* New "no value" optional. */
kiln_status kl_rt_none(kl_type_kind of, kl_rt **out);
/* Aligned runtime copy of a constant (initializer, Constant attribute, test
 * data): numeric data copied, strings duplicated.  Errors name the tensor. */
kiln_status kl_rt_from_tensor(const kl_tensor *t, kl_rt **out);
/* Copy of a tensor with its own storage (strings copied). */
kiln_status kl_rt_clone(const kl_rt *src, kl_rt **out);
/* Set a string element, copying the bytes. */
kiln_status kl_rt_set_string(kl_rt *t, int64_t i, const char *s, size_t len);
kl_rt *kl_rt_ref(kl_rt *v);
void kl_rt_unref(kl_rt *v);
/* "float[2,3]" style description into buf. */
char *kl_rt_describe(const kl_rt *v, char *buf, size_t size);

/* ---- kernel context ---------------------------------------------------------- */

struct kl_exec;

typedef struct kl_kctx {
    const kl_node *node;
    kl_rt **in;       /* n_in entries; NULL: omitted optional input */
    size_t n_in;
    kl_rt **out;      /* n_out entries, NULL until set; omitted outputs stay NULL */
    size_t n_out;
    struct kl_exec *exec; /* for subgraphs (If/Loop/Scan/SequenceMap) */
    int threads;
    const void *state;    /* what the tactic's prepare() made, or NULL */
    struct kl_pool *pool; /* the context's thread pool, or NULL: one thread */
    bool writes_all;      /* the kernel writes every output element: no zeroing */
} kl_kctx;

/* Scratch memory for the running node, valid until the node returns: from
 * the context's workspace (no heap allocation once it has grown to the
 * largest node's need), or NULL with the error set.  64-byte aligned. */
void *kl_kctx_scratch(kl_kctx *c, size_t bytes);
/* The same scratch for helpers that have no kl_kctx at hand: memory of the
 * node running on this thread (NULL when none runs or it cannot grow), and
 * whether p lies in it (such memory must not be passed to kl_free). */
void *kl_scratch_tls_alloc(size_t bytes);
bool kl_scratch_tls_owns(const void *p);

/* True if output i is wanted by the graph (not omitted with ""). */
bool kl_kctx_want(const kl_kctx *c, size_t i);
/* Create output i (i < the node's output count) as a new zeroed tensor.
 * An output the graph omits ("") is created and dropped, so kernels need
 * not special-case it. */
kiln_status kl_kctx_output(kl_kctx *c, size_t i, kiln_dtype dtype, int rank, const int64_t *dims,
                           kl_rt **out);
/* Set output i to an existing value (takes over the caller's reference). */
kiln_status kl_kctx_set_output(kl_kctx *c, size_t i, kl_rt *v);
/* Error helper: returns status with a message (the executor adds the node). */
kiln_status kl_kctx_fail(kl_kctx *c, kiln_status status, const char *fmt, ...) KL_PRINTF(3, 4);

/* Run subgraph g (an attribute of c->node) with the given inputs bound to
 * g->inputs in order; outputs[i] receive references to g->outputs. Outer
 * scope values are visible. */
kiln_status kl_exec_subgraph(kl_kctx *c, const kl_graph *g, kl_rt *const *inputs, size_t n_inputs,
                             kl_rt **outputs, size_t n_outputs);

/* ---- element access helpers (any numeric dtype through double / int64) --------- */

double kl_rt_get_f64(const kl_rt *t, int64_t i);
/* Integer targets: 8-64 bit truncate toward zero and saturate (NaN -> 0),
 * 4/2-bit round to nearest and saturate -- not Cast's wrap-around (the
 * Cast kernel has its own exact conversions); float16/bfloat16 round
 * through float. */
void kl_rt_set_f64(kl_rt *t, int64_t i, double v);
int64_t kl_rt_get_i64(const kl_rt *t, int64_t i);
void kl_rt_set_i64(kl_rt *t, int64_t i, int64_t v);
/* Read an integer tensor (any int dtype) of at most max elements into out. */
kiln_status kl_rt_to_i64(const kl_rt *t, int64_t *out, int64_t max, const char *what);

/* ---- registry ------------------------------------------------------------------ */

typedef kiln_status (*kl_kernel_fn)(kl_kctx *c);

/* One kernel: (domain, op, opset range) and the element types it accepts for
 * its first input (bit 1u<<dtype; 0 = any, the kernel checks). */
typedef struct kl_kernel_def {
    const char *domain; /* "" = ai.onnx */
    const char *op;
    int since, until;   /* until 0 = current */
    uint64_t types;
    kl_kernel_fn run;
} kl_kernel_def;

#define KL_T(dt) (1ull << (KILN_DTYPE_##dt))
#define KL_T_FLOATS (KL_T(FLOAT) | KL_T(DOUBLE) | KL_T(FLOAT16) | KL_T(BFLOAT16))
#define KL_T_INTS                                                                                \
    (KL_T(INT8) | KL_T(INT16) | KL_T(INT32) | KL_T(INT64) | KL_T(UINT8) | KL_T(UINT16) |          \
     KL_T(UINT32) | KL_T(UINT64))
#define KL_T_NUMERIC (KL_T_FLOATS | KL_T_INTS)

/* Find the kernel for node n (domain, op, opset, first input's dtype); NULL if none. */
const kl_kernel_def *kl_kernel_find(const kl_node *n, kiln_dtype first_input);
/* Is there a kernel for (domain, op, opset) for any type? */
bool kl_kernel_exists(const char *domain, const char *op, int64_t opset);


#endif /* KL_KERNEL_H */
