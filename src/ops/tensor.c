/* Schemas and shape inference: tensor family (stub, being written). */
#include "ops/ops.h"

const kl_op_schema kl_ops_tensor[] = {
    {0},
};
