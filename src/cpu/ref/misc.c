/* CPU reference kernels: misc family (stub, being written). */
#include "backend/kernel.h"

const kl_kernel_def kl_ref_misc[] = {
    {0},
};
