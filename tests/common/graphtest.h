/*
 * graphtest.h — helpers shared by the pass tests: parse a model built with
 * onnxbuild, and count the live nodes of an op in its main graph.
 */
#ifndef KT_GRAPHTEST_H
#define KT_GRAPHTEST_H

#include <stdio.h>
#include <string.h>

#include "onnx/onnx.h"
#include "pbwriter.h"

/* Parse bytes built in the test (NULL, with the error printed, on failure). */
static inline kl_model *load_bytes(const kt_pb *mb) {
    kl_model *m = NULL;
    kiln_status s = kl_onnx_parse(mb->data, mb->len, "<test>", NULL, &m);
    if (s) fprintf(stderr, "    load failed: %s\n", kiln_last_error());
    return m;
}

/* Live nodes of m's main graph of op `op` ("kiln.X" for the kiln domain). */
static inline int count_op(const kl_model *m, const char *op) {
    int n = 0;
    const char *dot = strchr(op, '.');
    for (size_t i = 0; i < m->graph->n_nodes; i++) {
        const kl_node *nd = m->graph->nodes[i];
        if (nd->removed) continue;
        if (dot ? (!strncmp(nd->domain, op, (size_t)(dot - op)) && !strcmp(nd->op_type, dot + 1))
                : (!nd->domain[0] && !strcmp(nd->op_type, op)))
            n++;
    }
    return n;
}

#endif
