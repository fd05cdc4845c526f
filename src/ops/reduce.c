/* Schemas and shape inference: reduce family (stub, being written). */
#include "ops/ops.h"

const kl_op_schema kl_ops_reduce[] = {
    {0},
};
