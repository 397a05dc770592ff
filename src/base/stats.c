/* stats.c - normal quantile and Wilson score bounds (see stats.h). */
#include "base/stats.h"

#include <math.h>

/* Acklam's coefficients for the inverse normal CDF (P. J. Acklam, "An algorithm
 * for computing the inverse normal cumulative distribution function", 2003):
 * relative error below 1.15e-9 before the refinement step. */
static const double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
			   -2.759285104469687e+02, 1.383577518672690e+02,
			   -3.066479806614716e+01, 2.506628277459239e+00};
static const double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
			   -1.556989798598866e+02, 6.680131188771972e+01,
			   -1.328068155288572e+01};
static const double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
			   -2.400758277161838e+00, -2.549732539343734e+00,
			   4.374664141464968e+00,  2.938163982698783e+00};
static const double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
			   2.445134137142996e+00, 3.754408661907416e+00};

double stats_normal_quantile(double p)
{
	if (!(p > 0 && p < 1))
		return NAN;
	const double p_low = 0.02425;
	double x;
	if (p < p_low) {
		double q = sqrt(-2 * log(p));
		x = (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
		    ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
	} else if (p <= 1 - p_low) {
		double q = p - 0.5, r = q * q;
		x = (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
		    (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
	} else {
		double q = sqrt(-2 * log1p(-p));
		x = -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
		    ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
	}
	/* one step of Halley's method on Phi(x) - p, Phi(x) = erfc(-x / sqrt 2) / 2 */
	double e = 0.5 * erfc(-x / sqrt(2.0)) - p;
	double u = e * 2.5066282746310002 /* sqrt(2 pi) */ * exp(x * x / 2);
	return x - u / (1 + x * u / 2);
}

double stats_one_sided_z(double confidence)
{
	if (!(confidence > 0.5 && confidence < 1))
		return NAN;
	return stats_normal_quantile(confidence);
}

double stats_wilson_bound(double accuracy_pct, double n, double z)
{
	if (!(accuracy_pct >= 0 && accuracy_pct <= 100) || !(n > 0) || !isfinite(n) ||
	    !isfinite(z))
		return NAN;
	if (z == 0)
		return accuracy_pct;
	double p = accuracy_pct / 100, z2 = z * z;
	/* exact at the ends: nothing below 0 correct, nothing above all */
	if ((p == 0 && z < 0) || (p == 1 && z > 0))
		return accuracy_pct;
	double denom = 1 + z2 / n;
	double centre = (p + z2 / (2 * n)) / denom;
	double half = fabs(z) / denom * sqrt(p * (1 - p) / n + z2 / (4 * n * n));
	double bound = z < 0 ? centre - half : centre + half;
	/* rounding may step a hair outside [0, 1] at p = 0 or 1 */
	bound = bound < 0 ? 0 : bound > 1 ? 1 : bound;
	return 100 * bound;
}
