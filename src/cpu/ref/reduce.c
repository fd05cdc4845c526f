/* CPU reference kernels: reduce family (stub, being written). */
#include "backend/kernel.h"

const kl_kernel_def kl_ref_reduce[] = {
    {0},
};
