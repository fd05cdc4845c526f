/* Schemas and shape inference: quant family (stub, being written). */
#include "ops/ops.h"

const kl_op_schema kl_ops_quant[] = {
    {0},
};
