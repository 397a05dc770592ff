/* loss.c - cross-entropy plus distillation (loss.h has the formulas). */
#include "train/loss.h"

#include <math.h>
#include <stdbool.h>
#include <stdlib.h>

#include "base/status.h"

/* p = softmax(z / T) in double; returns log(sum exp((z - max) / T)) + max / T,
 * the log-partition, so that log p_i = z_i / T - it. */
static double softmax_t(int classes, const float *z, double temperature, double *p)
{
	double mx = z[0];
	for (int c = 1; c < classes; c++)
		mx = z[c] > mx ? z[c] : mx;
	double sum = 0.0;
	for (int c = 0; c < classes; c++) {
		p[c] = exp(((double)z[c] - mx) / temperature);
		sum += p[c];
	}
	for (int c = 0; c < classes; c++)
		p[c] /= sum;
	return log(sum) + mx / temperature;
}

enum presso_status train_loss(int n, int classes, const float *z, const int32_t *labels,
			      const float *teacher, double kd_weight, double temperature,
			      float grad_scale, float *dz, int *n_correct, double *loss)
{
	/* classes is bounded by the logits row of one image; a VLA-free buffer */
	double total = 0.0;
	int correct = 0;
	bool kd = teacher && kd_weight > 0.0;
	double a = kd ? kd_weight : 0.0, tt = temperature;
	double *p = malloc(sizeof(double) * (size_t)classes * 3);
	if (!p)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	double *ps = p + classes, *pt = p + 2 * classes;
	for (int i = 0; i < n; i++) {
		const float *zi = z + (int64_t)i * classes;
		int32_t y = labels[i];
		PRESSO_CHECK(y >= 0 && y < classes);
		int best = 0;
		for (int c = 1; c < classes; c++)
			best = zi[c] > zi[best] ? c : best;
		correct += best == y;
		double lz = softmax_t(classes, zi, 1.0, p);
		double l = (1.0 - a) * (lz - (double)zi[y]);
		if (kd) {
			const float *ti = teacher + (int64_t)i * classes;
			double ls = softmax_t(classes, zi, tt, ps);
			double lt = softmax_t(classes, ti, tt, pt);
			double kl = 0.0;
			for (int c = 0; c < classes; c++)
				if (pt[c] > 0.0) /* log pt - log ps, from the log-partitions */
					kl += pt[c] * (((double)ti[c] / tt - lt) - ((double)zi[c] / tt - ls));
			l += a * tt * tt * kl;
		}
		total += l;
		if (!dz)
			continue;
		float *di = dz + (int64_t)i * classes;
		for (int c = 0; c < classes; c++) {
			double g = (1.0 - a) * (p[c] - (c == y ? 1.0 : 0.0));
			if (kd)
				g += a * tt * (ps[c] - pt[c]);
			di[c] = (float)g * grad_scale;
		}
	}
	free(p);
	if (n_correct)
		*n_correct = correct;
	*loss = total;
	return PRESSO_OK;
}
