/* CPU reference kernels: quant family (stub, being written). */
#include "backend/kernel.h"

const kl_kernel_def kl_ref_quant[] = {
    {0},
};
