/* stats.h - confidence intervals for an accuracy measured on a finite set of
 * images, shared by the store (the `at 95%` comparisons of --where / --pick,
 * `presso pareto`'s interval column) and the search (constraints with a
 * confidence).
 *
 * An accuracy of k correct out of n images is a binomial proportion. Its
 * interval is the Wilson score interval (Wilson 1927): the proportions x whose
 * score test |p - x| <= z sqrt(x (1 - x) / n) does not reject, i.e.
 *
 *     centre = (p + z^2 / 2n) / (1 + z^2 / n)
 *     half   = z / (1 + z^2 / n) * sqrt(p (1 - p) / n + z^2 / 4n^2)
 *
 * with p = k / n. Unlike the normal (Wald) interval it stays inside [0, 1],
 * is not empty at p = 0 or 1, and covers close to its nominal level for the
 * n of a validation split (hundreds to tens of thousands of images). A
 * one-sided bound at confidence c uses z = the standard normal quantile of c
 * (1.6449 at 95 %); a two-sided interval at c uses the quantile of
 * (1 + c) / 2 (1.9600 at 95 %).
 *
 * Accuracies are in percent here, as everywhere in presso.
 */
#ifndef PRESSO_STATS_H
#define PRESSO_STATS_H

/* The quantile of the standard normal distribution at probability p in
 * (0, 1) (Acklam's rational approximation, then one Halley step on erfc:
 * about 1e-15 relative error); NAN outside (0, 1). */
double stats_normal_quantile(double p);

/* One Wilson bound of an accuracy (percent, 0..100) measured on n images:
 * z < 0 gives the lower bound, z > 0 the upper, z = 0 the accuracy itself.
 * NAN when the accuracy is NAN or outside 0..100, or n is not a positive
 * number (an accuracy whose number of images is not known has no interval). */
double stats_wilson_bound(double accuracy_pct, double n, double z);

/* The z of a one-sided bound at confidence c in (0.5, 1): the normal
 * quantile of c. NAN outside. */
double stats_one_sided_z(double confidence);

#endif
