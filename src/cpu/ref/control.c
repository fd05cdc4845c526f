/* CPU reference kernels: control family (stub, being written). */
#include "backend/kernel.h"

const kl_kernel_def kl_ref_control[] = {
    {0},
};
