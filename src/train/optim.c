/* optim.c - SGD, Adam and the schedules (optim.h). */
#include "train/optim.h"

#include <math.h>
#include <stdlib.h>

static const double PI = 3.14159265358979323846;

enum presso_status optim_create(const struct train_config *tc, const struct tnet *t,
				struct optim **out)
{
	*out = NULL;
	struct optim *o = calloc(1, sizeof *o);
	if (!o)
		return status_fail(PRESSO_E_NOMEM, "out of memory for the optimizer");
	o->kind = tc->optimizer;
	o->n = tnet_n_floats(t);
	o->m = calloc((size_t)(o->n ? o->n : 1), sizeof *o->m);
	if (o->kind == OPTIM_ADAM)
		o->v = calloc((size_t)(o->n ? o->n : 1), sizeof *o->v);
	if (!o->m || (o->kind == OPTIM_ADAM && !o->v)) {
		optim_free(o);
		return status_fail(PRESSO_E_NOMEM, "out of memory for the optimizer state");
	}
	*out = o;
	return PRESSO_OK;
}

void optim_free(struct optim *o)
{
	if (!o)
		return;
	free(o->m);
	free(o->v);
	free(o);
}

void optim_step(struct optim *o, const struct train_config *tc, struct tnet *t,
		const float *grad, double lr)
{
	o->t++;
	double b1 = tc->beta1, b2 = tc->beta2;
	double c1 = 1.0 - pow(b1, (double)o->t), c2 = 1.0 - pow(b2, (double)o->t);
	for (int p = 0; p < tnet_n_params(t); p++) {
		const struct tnet_param *tp = tnet_param(t, p);
		float *w = tnet_param_data(t, p);
		const float *g = grad + tp->offset;
		float *m = o->m + tp->offset;
		double wd = tp->kind == TP_WEIGHT ? tc->weight_decay : 0.0;
		if (o->kind == OPTIM_SGD) {
			float mu = (float)tc->momentum, lrf = (float)lr, wdf = (float)wd;
			for (int64_t i = 0; i < tp->n; i++) {
				float gi = g[i] + wdf * w[i];
				m[i] = mu * m[i] + gi;
				w[i] -= lrf * (tc->nesterov ? gi + mu * m[i] : m[i]);
			}
		} else {
			float *v = o->v + tp->offset;
			float b1f = (float)b1, b2f = (float)b2, eps = (float)tc->eps;
			float step = (float)(lr / c1), is2 = (float)(1.0 / sqrt(c2));
			float decay = (float)(1.0 - lr * wd);
			for (int64_t i = 0; i < tp->n; i++) {
				m[i] = b1f * m[i] + (1.0f - b1f) * g[i];
				v[i] = b2f * v[i] + (1.0f - b2f) * g[i] * g[i];
				w[i] = w[i] * decay - step * m[i] / (sqrtf(v[i]) * is2 + eps);
			}
		}
	}
}

double optim_lr(const struct train_config *tc, int64_t step, int64_t total,
		int64_t steps_per_epoch)
{
	if (tc->warmup_steps > 0 && step < tc->warmup_steps)
		return tc->lr * (double)(step + 1) / (double)tc->warmup_steps;
	switch (tc->schedule) {
	case SCHED_COSINE: {
		int64_t span = total - tc->warmup_steps;
		double t = span > 1 ? (double)(step - tc->warmup_steps) / (double)(span - 1) : 0.0;
		t = t < 0 ? 0 : t > 1 ? 1 : t;
		return tc->lr_min + (tc->lr - tc->lr_min) * 0.5 * (1.0 + cos(PI * t));
	}
	case SCHED_STEP: {
		int64_t epoch = steps_per_epoch > 0 ? step / steps_per_epoch : 0;
		return tc->lr * pow(tc->gamma, (double)(epoch / tc->step_epochs));
	}
	default:
		return tc->lr;
	}
}
