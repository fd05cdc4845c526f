/* CPU reference kernels: norm family (stub, being written). */
#include "backend/kernel.h"

const kl_kernel_def kl_ref_norm[] = {
    {0},
};
