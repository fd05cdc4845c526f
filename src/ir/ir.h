/*
 * ir.h — kiln's graph IR: values with element type and (symbolic) shape,
 * nodes with typed attributes, constant tensors (zero-copy views of the model
 * file), graphs with outer scopes, and the model that owns them all.
 *
 * Every object of a model lives in the model's arena and is released with
 * the model.  Nothing here knows protobuf: src/onnx/ builds this IR.
 */
#ifndef KL_IR_H
#define KL_IR_H

#include "core/core.h"

struct kl_graph;
struct kl_node;
struct kl_op_schema;

/* A byte string that is NOT NUL-terminated (often points into the file). */
typedef struct kl_str {
    const char *ptr;
    size_t len;
} kl_str;

/* ---- shapes and types ----------------------------------------------------- */

/* One dimension: a known size, a named symbolic size ("batch"), or unknown. */
typedef struct kl_dim {
    int64_t value;     /* >= 0: known size; -1: not known */
    const char *param; /* symbolic name when value == -1; NULL = anonymous */
} kl_dim;

typedef struct kl_shape {
    int rank;      /* -1: rank unknown (dims is NULL) */
    kl_dim *dims;  /* rank entries */
} kl_shape;

typedef enum kl_type_kind {
    KL_TYPE_UNKNOWN = 0, /* nothing known (no value_info, not inferred) */
    KL_TYPE_TENSOR,
    KL_TYPE_SPARSE_TENSOR,
    KL_TYPE_SEQUENCE,
    KL_TYPE_MAP,
    KL_TYPE_OPTIONAL
} kl_type_kind;

typedef struct kl_type {
    kl_type_kind kind;
    kiln_dtype elem;       /* tensor/sparse: element type (UNDEFINED if unknown); map: key type */
    kl_shape shape;        /* tensor/sparse; rank -1 when unknown */
    struct kl_type *inner; /* sequence/optional: element type; map: value type */
} kl_type;

/* ---- constant tensors ------------------------------------------------------- */

/* A dense constant: an initializer, a Constant's value, a tensor attribute.
 * `data` points into the mapped model or external data file when the tensor
 * was stored as raw bytes (zero-copy), otherwise into the model's arena.
 * `data` may be UNALIGNED: read it with memcpy.  Sub-byte types are packed
 * as in ONNX (low nibble first).  Booleans are one byte each. */
typedef struct kl_tensor {
    const char *name; /* "" when unnamed */
    kiln_dtype dtype;
    int rank;
    int64_t *dims;
    int64_t count;       /* product of dims (1 for rank 0) */
    const void *data;    /* count elements, nbytes bytes; NULL when nbytes == 0 */
    size_t nbytes;
    kl_str *strings;     /* dtype STRING: count entries */
    bool external;       /* data came from an external file */
    const char *location; /* external: file name as written in the model */
    int64_t offset;      /* external: byte offset in that file */
} kl_tensor;

/* A sparse constant (COO): values [NNZ] and indices [NNZ, rank] or [NNZ]
 * (linearized), for a dense tensor of shape dims. */
typedef struct kl_sparse {
    kl_tensor *values;
    kl_tensor *indices;
    int rank;
    int64_t *dims;
} kl_sparse;

/* ---- attributes --------------------------------------------------------------- */

/* ONNX's AttributeProto.AttributeType numbers. */
typedef enum kl_attr_type {
    KL_ATTR_UNDEFINED = 0,
    KL_ATTR_FLOAT = 1,
    KL_ATTR_INT = 2,
    KL_ATTR_STRING = 3,
    KL_ATTR_TENSOR = 4,
    KL_ATTR_GRAPH = 5,
    KL_ATTR_FLOATS = 6,
    KL_ATTR_INTS = 7,
    KL_ATTR_STRINGS = 8,
    KL_ATTR_TENSORS = 9,
    KL_ATTR_GRAPHS = 10,
    KL_ATTR_SPARSE_TENSOR = 11,
    KL_ATTR_SPARSE_TENSORS = 12,
    KL_ATTR_TYPE_PROTO = 13,
    KL_ATTR_TYPE_PROTOS = 14
} kl_attr_type;

typedef struct kl_attr {
    const char *name;
    kl_attr_type type;
    const char *ref_attr_name; /* function bodies: refers to the caller's attribute */
    /* single values */
    float f;
    int64_t i;
    kl_str s;
    kl_tensor *t;
    struct kl_graph *g;
    kl_sparse *sparse;
    kl_type *tp;
    /* lists: n entries in the array matching `type` */
    size_t n;
    float *floats;
    int64_t *ints;
    kl_str *strings;
    kl_tensor **tensors;
    struct kl_graph **graphs;
    kl_sparse **sparses;
    kl_type **tps;
} kl_attr;

/* ---- values, nodes, graphs -------------------------------------------------------- */

enum {
    KL_VALUE_GRAPH_INPUT = 1u << 0,  /* declared in graph.input */
    KL_VALUE_GRAPH_OUTPUT = 1u << 1, /* declared in graph.output */
    KL_VALUE_INITIALIZER = 1u << 2,  /* has constant data in `init` */
    KL_VALUE_DECLARED = 1u << 3,     /* type came from the model (input/output/value_info) */
    KL_VALUE_INFERRED = 1u << 4      /* type (or part of it) came from shape inference */
};

/* Known contents of a small integer tensor (rank 0 or 1), as produced by
 * shape arithmetic (Shape -> Gather -> Concat -> Reshape): each element is a
 * known number or a symbolic dimension.  Lets Reshape keep "batch". */
typedef struct kl_symval {
    int rank;      /* 0 or 1 */
    int64_t count; /* number of elements */
    kl_dim *v;
} kl_symval;

typedef struct kl_value {
    const char *name;
    kl_type type;
    uint32_t flags;
    struct kl_graph *graph;    /* the graph scope that owns this value */
    struct kl_node *producer;  /* NULL for inputs, initializers, undefined values */
    int producer_output;       /* index in producer->outputs */
    kl_tensor *init;           /* initializer data (KL_VALUE_INITIALIZER) */
    kl_sparse *sparse_init;    /* sparse initializer, if any */
    kl_symval *sym;            /* known contents, or NULL */
    size_t use_count;          /* number of node inputs that read it (all scopes) */
    size_t id;                 /* index in graph->values */
    /* Readers (edit.c): valid for the values of a graph after
     * kl_graph_build_uses(g) and kept up to date by every kl_* edit call.
     * Includes nodes of subgraphs that read this value from an outer scope. */
    struct kl_use *uses;
    size_t n_uses, cap_uses;
} kl_value;

/* One reader of a value: input `input` of `node`. */
typedef struct kl_use {
    struct kl_node *node;
    size_t input;
} kl_use;

typedef struct kl_node {
    const char *name;    /* as in the model; may be "" */
    const char *op_type;
    const char *domain;  /* "" for the default ai.onnx domain ("ai.onnx" is normalized to "") */
    const char *overload; /* function overload (IR 10), "" if none */
    int64_t opset;       /* version of `domain` that applies to this node; 0 if not imported */
    size_t index;        /* position in its graph's node list */
    struct kl_graph *graph;
    size_t n_inputs, n_outputs, n_attrs;
    kl_value **inputs;   /* NULL entry: optional input left out ("") */
    kl_value **outputs;  /* NULL entry: optional output left out ("") */
    kl_attr *attrs;
    const struct kl_op_schema *schema; /* resolved at load; NULL if unknown */
    /* NULL for a node of the original model; for a node made by a pass, the
     * '+'-joined names of the original nodes it absorbed ("conv1+bn1+relu1"). */
    const char *fused_from;
    bool removed;        /* tombstone (edit.c): dropped at kl_graph_compact() */
} kl_node;

typedef struct kl_graph {
    const char *name;
    struct kl_model *model;
    struct kl_graph *parent; /* enclosing graph of a subgraph, else NULL */
    struct kl_node *owner;   /* the node whose attribute this subgraph is */
    int depth;               /* 0 for the main graph */
    kl_node **nodes;
    size_t n_nodes;
    size_t cap_nodes;        /* capacity of nodes (0: exactly n_nodes, loader) */
    size_t cap_initializers; /* capacity of initializers (0: exactly n_initializers) */
    kl_value **inputs;       /* graph.input, in order (may include initializers, IR < 4) */
    size_t n_inputs;
    kl_value **outputs;
    size_t n_outputs;
    kl_value **initializers;
    size_t n_initializers;
    kl_value **values;       /* every value of this scope, in creation order */
    size_t n_values;
    kl_strmap by_name;       /* name -> kl_value* in this scope */
    bool uses_built;         /* kl_graph_build_uses() ran: kl_value.uses are exact */
    size_t n_subgraph_nodes; /* nodes with subgraph attributes (edit.c; counted with the uses) */
} kl_graph;

/* ---- functions and the model ------------------------------------------------------ */

typedef struct kl_opset {
    const char *domain; /* "" for ai.onnx */
    int64_t version;
} kl_opset;

/* A model-local function (FunctionProto); calls are inlined at load. */
typedef struct kl_function {
    const char *name, *domain, *overload;
    kl_graph *body;            /* inputs/outputs are the formal parameters */
    const char **attr_names;   /* attributes without default */
    size_t n_attr_names;
    kl_attr *attr_defaults;    /* attributes with default (attribute_proto) */
    size_t n_attr_defaults;
    kl_opset *opsets;
    size_t n_opsets;
} kl_function;

/* A problem found while loading or checking, in the words of
 * kiln_check_problem(). */
typedef struct kl_problem {
    kiln_check_severity severity;
    int64_t node_index; /* main-graph node index, -1 when not about a node */
    const char *message;
} kl_problem;

typedef struct kl_model {
    kl_arena arena;
    const char *path;     /* file path, or "<memory>" */
    const char *base_dir; /* folder for external data, NULL = none allowed */
    kl_mapfile file;      /* the mapped model (size 0 when loaded from memory) */
    const uint8_t *bytes; /* model bytes (mapped or caller's) */
    size_t size;
    kl_mapfile *ext_files; /* mapped external data files */
    const char **ext_names;
    size_t n_ext_files, cap_ext_files;

    int64_t ir_version;
    kl_opset *opsets;
    size_t n_opsets;
    const char *producer_name, *producer_version, *domain, *doc;
    int64_t model_version;
    kl_str *meta_keys, *meta_values;
    size_t n_meta;
    kl_graph *graph;
    kl_function **functions;
    size_t n_functions;
    size_t n_inlined; /* function calls inlined at load */

    kl_problem *problems; /* found at load (duplicate names, bad types...) */
    size_t n_problems, cap_problems;
    kl_ptrvec graphs;     /* every graph (main, subgraphs, function bodies), for cleanup */
} kl_model;

/* ---- IR helpers (ir.c) --------------------------------------------------------- */

/* Release a model and everything it owns (maps included).  NULL is a no-op. */
void kl_model_free(kl_model *m);

/* Record a problem on the model (message formatted into the arena). */
kiln_status kl_model_problem(kl_model *m, kiln_check_severity sev, int64_t node_index,
                             const char *fmt, ...) KL_PRINTF(4, 5);

/* Opset version the model imports for `domain` ("" = ai.onnx), 0 if none. */
int64_t kl_model_opset(const kl_model *m, const char *domain);

/* Find a value by name in `g` or its enclosing graphs; NULL if none. */
kl_value *kl_graph_lookup(const kl_graph *g, const char *name);
/* Find a value in `g`'s own scope, creating it if missing. */
kiln_status kl_graph_value(kl_graph *g, const char *name, kl_value **out);
/* Create a graph (empty) in m's arena. */
kiln_status kl_graph_new(kl_model *m, kl_graph *parent, kl_node *owner, kl_graph **out);

/* Attribute named `name` of node `n`, or NULL. */
const kl_attr *kl_node_attr(const kl_node *n, const char *name);
/* Typed getters with defaults (the default is returned when absent). */
int64_t kl_node_attr_int(const kl_node *n, const char *name, int64_t dflt);
float kl_node_attr_float(const kl_node *n, const char *name, float dflt);
/* String attribute as a NUL-terminated arena copy, or dflt. */
const char *kl_node_attr_string(const kl_node *n, const char *name, const char *dflt);
/* INTS attribute: returns count (or -1 if absent) and sets *vals. */
int64_t kl_node_attr_ints(const kl_node *n, const char *name, const int64_t **vals);
/* A node's display name for messages: its name, or "#<index>" if empty. */
const char *kl_node_label(const kl_node *n);

/* Shape helpers. */
bool kl_shape_is_static(const kl_shape *s);
/* Element count of a static shape; false if not static or on overflow. */
bool kl_shape_numel(const kl_shape *s, int64_t *out);
/* Format "[batch,3,224,224]" ("?" for unknown dims, "[*]" for unknown rank)
 * into buf; returns buf. */
char *kl_shape_format(const kl_shape *s, char *buf, size_t size);
/* Format a type: "float[batch,3,224,224]", "seq(float[?])", ... */
char *kl_type_format(const kl_type *t, char *buf, size_t size);
/* Deep-copy a type into arena a. */
kiln_status kl_type_copy(kl_arena *a, const kl_type *src, kl_type *dst);

/* A constant tensor as int64 values (any integer dtype); false if the
 * tensor is not an integer tensor or has more than max elements. */
bool kl_tensor_to_i64(const kl_tensor *t, int64_t *out, int64_t max);
/* Element `i` of a numeric tensor as double (float16/bfloat16 converted). */
double kl_tensor_get_f64(const kl_tensor *t, int64_t i);

/* ---- editing the IR (edit.c) ---------------------------------------------------------
 * Passes edit the main graph in place; every object lives in the model's arena.
 * Protocol: kl_graph_build_uses(g) once, then any number of edits (each keeps the
 * consumer lists, use counts and producers exact), kl_graph_verify() after each
 * rewrite, kl_graph_compact() to drop tombstones and renumber.  Subgraphs are not
 * edited, but their reads of outer values count as uses and are rewired too. */

/* (Re)build the consumer lists of every value of g's scope, counting readers in
 * g and in all its subgraphs (recursively); also sets use_count to n_uses. */
kiln_status kl_graph_build_uses(kl_graph *g);

/* A new value in g's scope named after `hint` (made unique with a "_kN" suffix
 * if the name is taken), typed as *type (deep-copied; NULL = unknown). */
kiln_status kl_value_new(kl_graph *g, const char *hint, const kl_type *type, kl_value **out);
/* A new initializer value in g named after `hint`: a deep copy of *t (dims and
 * data copied into the arena; strings unsupported), typed dtype[dims]. */
kiln_status kl_value_new_const(kl_graph *g, const char *hint, const kl_tensor *t, kl_value **out);
/* Turn value v (produced by a node that the caller removes) into an initializer
 * holding *t (deep-copied); v keeps its name, uses and type. */
kiln_status kl_value_set_const(kl_graph *g, kl_value *v, const kl_tensor *t);
/* Constant contents of v: initializer data or the value of a Constant node that
 * produces it; NULL otherwise (also for an initializer that is a graph input,
 * which the caller may override).  Tensors made from value_float/ints attributes
 * live in the model's arena. */
const kl_tensor *kl_value_const(kl_model *m, const kl_value *v);
/* The only reader of v when v is read exactly once, by a live node of graph g,
 * and v is not a graph output; NULL otherwise. */
kl_node *kl_value_only_use(const kl_graph *g, const kl_value *v);
/* True when v is a graph output of g or is read by a node in a subgraph. */
bool kl_value_escapes(const kl_graph *g, const kl_value *v);

/* Create a live node in g: op_type `op` of `domain` ("" = ai.onnx, "kiln" adds
 * the opset import {"kiln",1} on first use), opset taken from the model's
 * import, schema resolved.  inputs (NULL = left out) gain a use; outputs must
 * have no live producer and become produced by the node.  attrs are copied
 * shallowly (names, arrays, tensors must live in the arena or be static).  The
 * node is inserted just before `at` (a node of g, may be a tombstone) or
 * appended when at is NULL; indices are renumbered.  name NULL = derived from
 * fused_from.  fused_from NULL: an original-model node.  Shape inference is
 * not run: call kl_node_infer(). */
kiln_status kl_node_new(kl_graph *g, const char *name, const char *op, const char *domain,
                        kl_value *const *inputs, size_t n_inputs, kl_value *const *outputs,
                        size_t n_outputs, const kl_attr *attrs, size_t n_attrs,
                        const char *fused_from, kl_node *at, kl_node **out);
/* Run n's schema shape inference (outputs typed; values declared by the model
 * are merged, a conflict is an error naming the node). */
kiln_status kl_node_infer(kl_model *m, kl_node *n);
/* Set input k of n to v (NULL = left out), keeping both consumer lists exact. */
kiln_status kl_node_set_input(kl_node *n, size_t k, kl_value *v);
/* Tombstone n: its inputs lose the use, its outputs lose their producer.  The
 * caller rewires or removes the outputs' readers before verifying. */
void kl_node_remove(kl_node *n);
/* The '+'-joined origin names of nodes[0..n) (each node's fused_from, else its
 * name, else "op#index"), in the arena; for fused_from of a new node. */
const char *kl_nodes_origin(kl_model *m, kl_node *const *nodes, size_t n);

/* Can every reader of `from` (node inputs in g and subgraphs, graph outputs of g)
 * read `to` instead?  False when the element types differ, the ranks or known
 * dims differ (no dtype or static-shape change), or `from` is a graph output
 * and `to` is a graph input/initializer/output or has no producer. */
bool kl_value_can_replace(const kl_graph *g, const kl_value *from, const kl_value *to);
/* Rewire every reader of `from` to `to` (kl_value_can_replace must hold, else
 * KILN_ERR_INTERNAL naming both).  When `from` is a graph output, the names
 * survive: `to`'s producer produces `from` instead and to's readers read `from`.
 * Afterwards the losing value has no readers. */
kiln_status kl_value_replace(kl_graph *g, kl_value *from, kl_value *to);

/* Drop tombstones, restore a topological order (stable: ties keep the current
 * order), renumber node indices, drop values of g with no producer, no readers
 * and no input/output/initializer role, renumber value ids. */
kiln_status kl_graph_compact(kl_graph *g);
/* Check g: every input/output edge points at a live value of g's scope chain,
 * each value has at most one producer and it is the node that lists it, live
 * nodes are in topological order, consumer lists match the edges (when built),
 * every value read is produced, an input, an initializer or an outer value,
 * every graph output is produced, and an initializer has data.  Returns
 * KILN_ERR_INTERNAL with a message naming the node and value. */
kiln_status kl_graph_verify(const kl_graph *g);

/* Attribute constructors for kl_node_new (no allocation; `name` is borrowed). */
kl_attr kl_attr_of_int(const char *name, int64_t v);
kl_attr kl_attr_of_float(const char *name, float v);
/* INTS attribute with a copy of v[0..n) in m's arena. */
kiln_status kl_attr_of_ints(kl_model *m, const char *name, const int64_t *v, size_t n,
                            kl_attr *out);

#endif /* KL_IR_H */
