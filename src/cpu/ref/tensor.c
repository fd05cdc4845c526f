/* CPU reference kernels: tensor family (stub, being written). */
#include "backend/kernel.h"

const kl_kernel_def kl_ref_tensor[] = {
    {0},
};
