/*
 * exec.h — the CPU run path: a program (kernel per node, constants, when each
 * intermediate is released) built once per session, and its execution.
 */
#ifndef KL_EXEC_H
#define KL_EXEC_H

#include "backend/kernel.h"

typedef struct kl_program kl_program;

/* Build the program for every graph of `m` (main graph and subgraphs): pick a
 * kernel for each node (KILN_ERR_UNSUPPORTED naming the first node without
 * one), materialize initializers as aligned runtime tensors, and compute
 * each intermediate's last use.  Owner: caller (kl_program_free). */
kiln_status kl_program_create(const kl_model *m, int threads, kl_program **out);
void kl_program_free(kl_program *p);

/* Run the main graph.  inputs[i] is bound to graph input i (g->inputs, in
 * declaration order; NULL keeps an initializer's default and is an error
 * for other inputs).  On success outputs[i] holds a reference to graph
 * output i (caller unrefs). */
kiln_status kl_program_run(kl_program *p, kl_rt *const *inputs, size_t n_inputs, kl_rt **outputs,
                        size_t n_outputs);

/* Nodes of the model without a kernel, for `kiln check`; calls fn for each. */
typedef void (*kl_missing_fn)(const kl_node *n, void *user);
void kl_program_list_missing(const kl_model *m, kl_missing_fn fn, void *user);

#endif
