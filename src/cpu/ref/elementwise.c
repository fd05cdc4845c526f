/* CPU reference kernels: elementwise family (stub, being written). */
#include "backend/kernel.h"

const kl_kernel_def kl_ref_elementwise[] = {
    {0},
};
