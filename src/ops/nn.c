/* Schemas and shape inference: nn family (stub, being written). */
#include "ops/ops.h"

const kl_op_schema kl_ops_nn[] = {
    {0},
};
