/* test_stats.c - the normal quantile and the Wilson score bounds
 * (src/base/stats.c) against values published elsewhere.
 */
#include <criterion/criterion.h>
#include <math.h>

#include "base/stats.h"

/* Newcombe's table gives 4 decimals of a proportion: half a unit of the last,
 * in percent */
#define NEWCOMBE_TOL_PCT 0.005
/* the quantile is refined to about 1e-15 relative; normal tables print 16
 * digits */
#define QUANTILE_TOL 1e-12

Test(stats, normal_quantile_matches_the_tables)
{
	cr_assert_float_eq(stats_normal_quantile(0.5), 0.0, QUANTILE_TOL);
	cr_assert_float_eq(stats_normal_quantile(0.95), 1.6448536269514715, QUANTILE_TOL);
	cr_assert_float_eq(stats_normal_quantile(0.975), 1.959963984540054, QUANTILE_TOL);
	cr_assert_float_eq(stats_normal_quantile(0.01), -2.3263478740408408, QUANTILE_TOL);
	cr_assert_float_eq(stats_normal_quantile(1e-10), -6.361340902404056, 1e-10);
	cr_assert_float_eq(stats_normal_quantile(0.999999), 4.753424308817089, 1e-10);
	for (double p = 0.001; p < 0.5; p += 0.0137) /* symmetric */
		cr_assert_float_eq(stats_normal_quantile(p), -stats_normal_quantile(1 - p), 1e-9,
				   "p = %g", p);
	cr_assert(isnan(stats_normal_quantile(0)));
	cr_assert(isnan(stats_normal_quantile(1)));
	cr_assert(isnan(stats_normal_quantile(NAN)));
	cr_assert_float_eq(stats_one_sided_z(0.95), 1.6448536269514715, QUANTILE_TOL);
	cr_assert(isnan(stats_one_sided_z(0.5)));
	cr_assert(isnan(stats_one_sided_z(1)));
	cr_assert(isnan(stats_one_sided_z(95)));
}

/* Newcombe (1998), "Two-sided confidence intervals for the single proportion:
 * comparison of seven methods", Statistics in Medicine 17, table II, method 3
 * (the score interval without continuity correction). */
Test(stats, wilson_matches_newcombe)
{
	static const struct {
		int k, n;
		double lo, hi; /* proportions */
	} rows[] = {
		{81, 263, 0.2553, 0.3662},
		{15, 148, 0.0624, 0.1605},
		{0, 20, 0.0, 0.1611},
		{1, 29, 0.0061, 0.1718},
	};
	double z = stats_normal_quantile(0.975);
	for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
		double acc = 100.0 * rows[i].k / rows[i].n;
		cr_assert_float_eq(stats_wilson_bound(acc, rows[i].n, -z), 100 * rows[i].lo,
				   NEWCOMBE_TOL_PCT, "%d/%d lower", rows[i].k, rows[i].n);
		cr_assert_float_eq(stats_wilson_bound(acc, rows[i].n, z), 100 * rows[i].hi,
				   NEWCOMBE_TOL_PCT, "%d/%d upper", rows[i].k, rows[i].n);
	}
}

Test(stats, wilson_bounds_of_a_validation_split)
{
	/* 900 of 1,000 images: the 95 % two-sided interval and one-sided bounds
	 * (the formula in stats.h evaluated in double precision elsewhere) */
	double z2 = stats_normal_quantile(0.975), z1 = stats_one_sided_z(0.95);
	cr_assert_float_eq(stats_wilson_bound(90, 1000, -z2), 87.98480368046516, 1e-9);
	cr_assert_float_eq(stats_wilson_bound(90, 1000, z2), 91.70905564069044, 1e-9);
	cr_assert_float_eq(stats_wilson_bound(90, 1000, -z1), 88.32999865159246, 1e-9);
	cr_assert_float_eq(stats_wilson_bound(90, 1000, z1), 91.45414188922669, 1e-9);
	/* more images, a narrower interval */
	cr_assert_gt(stats_wilson_bound(90, 10000, -z1), stats_wilson_bound(90, 1000, -z1));
	/* inside 0..100 at the ends, and not empty there */
	cr_assert_eq(stats_wilson_bound(100, 29, z2), 100.0);
	cr_assert_float_eq(stats_wilson_bound(100, 29, -z2), 88.30302015002593, 1e-9);
	cr_assert_eq(stats_wilson_bound(0, 20, -z2), 0.0);
	/* z = 0 is the point value; no interval without a count or a valid value */
	cr_assert_eq(stats_wilson_bound(91.5, 1000, 0), 91.5);
	cr_assert(isnan(stats_wilson_bound(90, 0, -z1)));
	cr_assert(isnan(stats_wilson_bound(90, NAN, -z1)));
	cr_assert(isnan(stats_wilson_bound(101, 1000, -z1)));
	cr_assert(isnan(stats_wilson_bound(NAN, 1000, -z1)));
}
