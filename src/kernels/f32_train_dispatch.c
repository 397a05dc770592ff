/* f32_train_dispatch.c - which training kernels this build and CPU run.
 *
 * The paths follow the INT8 kernels' choice (q8_dispatch.c: CPUID, XCR0 and
 * PRESSO_ISA): where the INT8 side runs avx512vnni the training side runs
 * avx512 (AVX-512F, present on every AVX-512 VNNI CPU), where it runs avx2 the
 * training side runs avx2, else the reference. */
#include "kernels/kernels_q8.h"
#include "kernels/kernels_train.h"

#if defined(__x86_64__)
extern const struct f32_train_kernels f32_train_avx2, f32_train_avx512;
#endif

const struct f32_train_kernels *f32_train_kernels_for(enum f32t_isa isa)
{
	switch (isa) {
	case F32T_ISA_REF:
		return &f32_train_ref;
#if defined(__x86_64__)
	case F32T_ISA_AVX2:
		return q8_isa_supported(Q8_ISA_AVX2) ? &f32_train_avx2 : NULL;
	case F32T_ISA_AVX512:
		return q8_isa_supported(Q8_ISA_AVX512VNNI) ? &f32_train_avx512 : NULL;
#endif
	default:
		return NULL;
	}
}

const struct f32_train_kernels *f32_train_kernels_best(void)
{
	switch (q8_isa_best()) {
	case Q8_ISA_AVX512VNNI:
		return f32_train_kernels_for(F32T_ISA_AVX512);
	case Q8_ISA_AVX2:
		return f32_train_kernels_for(F32T_ISA_AVX2);
	default:
		return &f32_train_ref;
	}
}
