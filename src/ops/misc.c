/* Schemas and shape inference: misc family (stub, being written). */
#include "ops/ops.h"

const kl_op_schema kl_ops_misc[] = {
    {0},
};
