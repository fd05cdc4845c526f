/* CPU reference kernels: recurrent and attention family (stub, being written). */
#include "backend/kernel.h"

const kl_kernel_def kl_ref_rnn[] = {
    {0},
};
