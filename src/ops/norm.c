/* Schemas and shape inference: norm family (stub, being written). */
#include "ops/ops.h"

const kl_op_schema kl_ops_norm[] = {
    {0},
};
