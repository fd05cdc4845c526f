/* CPU reference kernels: nn family (stub, being written). */
#include "backend/kernel.h"

const kl_kernel_def kl_ref_nn[] = {
    {0},
};
