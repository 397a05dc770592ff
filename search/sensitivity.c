/* sensitivity.c - per-layer sensitivity: measure, store, greedy genomes (see
 * sensitivity.h for what is measured and the stored format). */
#define _POSIX_C_SOURCE 200809L
#include "search/sensitivity.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/json_get.h"

const double sensitivity_budgets[SENSITIVITY_N_BUDGETS] = {0.5, 1, 2, 4, 8};

/* The knobs measured, in table order; cheap_low: a lower domain index is the
 * cheaper (fewer bits, lower rank), else the higher one (more pruning). */
static const struct {
	enum knob knob;
	bool cheap_low;
} measured[] = {
	{KNOB_BITS, true}, {KNOB_ACT_BITS, true}, {KNOB_PRUNE, false}, {KNOB_RANK, true}};
#define N_MEASURED ((int)(sizeof measured / sizeof measured[0]))

/* The most accurate choice of a knob's domain (an index). */
static int reference_index(const struct knob_domain *d, enum knob k)
{
	if (k == KNOB_PRUNE || k == KNOB_PRUNE_KIND)
		return 0;
	return d->n - 1;
}

void sensitivity_reference_genome(const struct space *sp, uint8_t *g)
{
	for (int l = 0; l < sp->n_layers; l++)
		for (int k = 0; k < KNOB_COUNT; k++)
			g[l * KNOB_COUNT + k] =
				(uint8_t)reference_index(&sp->ls[l].d[k], (enum knob)k);
}

void sensitivity_free(struct sensitivity *sn)
{
	if (!sn)
		return;
	free(sn->e);
	free(sn);
}

static struct sensitivity *alloc_table(int n_layers, int cap)
{
	struct sensitivity *sn = calloc(1, sizeof *sn);
	if (!sn)
		return NULL;
	sn->n_layers = n_layers;
	sn->e = malloc(sizeof *sn->e * (size_t)(cap > 0 ? cap : 1));
	if (!sn->e) {
		free(sn);
		return NULL;
	}
	return sn;
}

enum presso_status sensitivity_measure(const struct study_ctx *ctx, const struct space *sp,
				       int64_t n_images, FILE *log, struct sensitivity **out)
{
	*out = NULL;
	enum presso_status s = PRESSO_OK;
	int cap = 0;
	for (int l = 0; l < sp->n_layers; l++)
		for (int m = 0; m < N_MEASURED; m++)
			cap += sp->ls[l].d[measured[m].knob].n;
	struct sensitivity *sn = alloc_table(sp->n_layers, cap);
	uint8_t *g = malloc((size_t)sp->n_genes);
	struct policy *p = NULL;
	struct layer_policy lp = policy_default_layer();
	if (!sn || !g || policy_uniform(&lp, sp->n_layers, &p) != PRESSO_OK) {
		s = status_fail(PRESSO_E_NOMEM, "out of memory");
		goto fail;
	}
	/* the same context on a prefix of the validation split (its indices come
	 * in seeded draw order, so the prefix is a random subset) */
	struct study_ctx sub = *ctx;
	sub.valid.n = n_images < ctx->valid.n ? n_images : ctx->valid.n;
	if (sub.valid.n < 1) {
		s = status_fail(PRESSO_E_USAGE, "sensitivity: the validation split has no images");
		goto fail;
	}
	sn->n_images = sub.valid.n;
	struct trial_metrics_out m;
	sensitivity_reference_genome(sp, g);
	space_genome_to_policy(sp, g, p);
	if ((s = trial_evaluate(&sub, p, false, false, 0, &m)) != PRESSO_OK) {
		status_wrap(s, "sensitivity: the reference policy");
		goto fail;
	}
	sn->reference_accuracy = m.accuracy;
	if (log)
		fprintf(log,
			"presso: measuring per-layer sensitivity on %lld validation images "
			"(reference %.2f %%)\n",
			(long long)sn->n_images, sn->reference_accuracy);
	for (int l = 0; l < sp->n_layers; l++) {
		for (int mk = 0; mk < N_MEASURED; mk++) {
			enum knob k = measured[mk].knob;
			const struct knob_domain *d = &sp->ls[l].d[k];
			int ref = reference_index(d, k);
			int gene = l * KNOB_COUNT + (int)k;
			for (int i = 0; i < d->n && d->n > 1; i++) {
				struct sensitivity_entry *e = &sn->e[sn->n_entries++];
				*e = (struct sensitivity_entry){l, k, d->v[i], 0};
				if (i == ref)
					continue;
				g[gene] = (uint8_t)i;
				space_genome_to_policy(sp, g, p);
				s = trial_evaluate(&sub, p, false, false, 0, &m);
				g[gene] = (uint8_t)ref;
				if (s != PRESSO_OK) {
					status_wrap(s, "sensitivity: layer '%s' at %s %g",
						    sp->layers[l].name, space_knob_name(k), d->v[i]);
					goto fail;
				}
				e->drop = sn->reference_accuracy - m.accuracy;
			}
		}
		if (log)
			fprintf(log, "presso: sensitivity %d/%d layers\n", l + 1, sp->n_layers);
	}
	free(g);
	policy_free(p);
	*out = sn;
	return PRESSO_OK;
fail:
	free(g);
	policy_free(p);
	sensitivity_free(sn);
	return s;
}

char *sensitivity_to_json(const struct sensitivity *sn, const struct layer *layers)
{
	unsigned since = json_failures();
	cJSON *doc = cJSON_CreateObject();
	cJSON_AddNumberToObject(doc, "version", 1);
	cJSON_AddNumberToObject(doc, "n_images", (double)sn->n_images);
	cJSON_AddNumberToObject(doc, "reference_accuracy", sn->reference_accuracy);
	cJSON *names = cJSON_AddArrayToObject(doc, "layers");
	for (int l = 0; names && l < sn->n_layers; l++)
		cJSON_AddItemToArray(names, cJSON_CreateString(layers[l].name));
	cJSON *arr = cJSON_AddArrayToObject(doc, "entries");
	for (int i = 0; arr && i < sn->n_entries; i++) {
		const struct sensitivity_entry *e = &sn->e[i];
		cJSON *row = cJSON_CreateArray();
		if (!cJSON_AddItemToArray(arr, row)) {
			cJSON_Delete(row);
			break;
		}
		cJSON_AddItemToArray(row, cJSON_CreateNumber(e->layer));
		cJSON_AddItemToArray(row, cJSON_CreateString(space_knob_name(e->knob)));
		cJSON_AddItemToArray(row, cJSON_CreateNumber(e->value));
		cJSON_AddItemToArray(row, cJSON_CreateNumber(e->drop));
	}
	char *text = json_print(doc, false, since);
	cJSON_Delete(doc);
	return text;
}

enum presso_status sensitivity_from_json(const char *text, const char *what,
					 const struct layer *layers, int n_layers,
					 struct sensitivity **out)
{
	*out = NULL;
	bool oom = false;
	cJSON *doc = json_parse(text ? text : "", NULL, false, &oom);
	struct sensitivity *sn = NULL;
	enum presso_status s = PRESSO_OK;
	if (oom) {
		s = status_fail(PRESSO_E_NOMEM, "out of memory reading %s", what);
		goto done;
	}
	const cJSON *ver = cJSON_GetObjectItemCaseSensitive(doc, "version");
	const cJSON *ni = cJSON_GetObjectItemCaseSensitive(doc, "n_images");
	const cJSON *ref = cJSON_GetObjectItemCaseSensitive(doc, "reference_accuracy");
	const cJSON *names = cJSON_GetObjectItemCaseSensitive(doc, "layers");
	const cJSON *arr = cJSON_GetObjectItemCaseSensitive(doc, "entries");
	if (!cJSON_IsNumber(ver) || ver->valuedouble != 1 || !cJSON_IsNumber(ni) ||
	    !cJSON_IsNumber(ref) || !cJSON_IsArray(names) || !cJSON_IsArray(arr)) {
		s = status_fail(PRESSO_E_FORMAT, "%s: not a sensitivity table presso wrote", what);
		goto done;
	}
	if (cJSON_GetArraySize(names) != n_layers) {
		s = status_fail(PRESSO_E_FORMAT, "%s: %d layers, the model has %d", what,
				cJSON_GetArraySize(names), n_layers);
		goto done;
	}
	int l = 0;
	for (const cJSON *e = names->child; e; e = e->next, l++)
		if (!cJSON_IsString(e) || strcmp(e->valuestring, layers[l].name) != 0) {
			s = status_fail(PRESSO_E_FORMAT, "%s: layer %d is not '%s'", what, l,
					layers[l].name);
			goto done;
		}
	if (!(sn = alloc_table(n_layers, cJSON_GetArraySize(arr)))) {
		s = status_fail(PRESSO_E_NOMEM, "out of memory reading %s", what);
		goto done;
	}
	sn->n_images = (int64_t)ni->valuedouble;
	sn->reference_accuracy = ref->valuedouble;
	int i = 0;
	for (const cJSON *row = arr->child; row; row = row->next, i++) {
		const cJSON *c[4] = {NULL};
		int n = 0;
		for (const cJSON *x = cJSON_IsArray(row) ? row->child : NULL; x && n < 5; x = x->next)
			if (n < 4)
				c[n++] = x;
			else
				n++;
		int knob = -1;
		for (int m = 0; n == 4 && cJSON_IsString(c[1]) && m < N_MEASURED; m++)
			if (strcmp(c[1]->valuestring, space_knob_name(measured[m].knob)) == 0)
				knob = (int)measured[m].knob;
		if (n != 4 || knob < 0 || !cJSON_IsNumber(c[0]) || !cJSON_IsNumber(c[2]) ||
		    !cJSON_IsNumber(c[3]) || c[0]->valuedouble != (int)c[0]->valuedouble ||
		    c[0]->valuedouble < 0 || c[0]->valuedouble >= n_layers) {
			s = status_fail(PRESSO_E_FORMAT,
					"%s: entries[%d]: expected [layer, knob, value, drop]", what, i);
			goto done;
		}
		sn->e[sn->n_entries++] = (struct sensitivity_entry){
			(int)c[0]->valuedouble, (enum knob)knob, c[2]->valuedouble, c[3]->valuedouble};
	}
done:
	cJSON_Delete(doc);
	if (s != PRESSO_OK) {
		sensitivity_free(sn);
		return s;
	}
	*out = sn;
	return PRESSO_OK;
}

enum presso_status sensitivity_for_study(const struct study_ctx *ctx, const struct space *sp,
					 struct store *st, int64_t study_id, FILE *log,
					 struct sensitivity **out)
{
	*out = NULL;
	void *value = NULL;
	size_t n = 0;
	bool found = false;
	const char *what = "search state '" SENSITIVITY_STATE_KEY "'";
	enum presso_status s =
		store_get_state(st, study_id, SENSITIVITY_STATE_KEY, &value, &n, &found);
	if (s != PRESSO_OK)
		return s;
	if (found) {
		s = sensitivity_from_json(value, what, ctx->layers, ctx->n_layers, out);
		free(value);
		return s;
	}
	struct sensitivity *sn = NULL;
	if ((s = sensitivity_measure(ctx, sp, sp->search.sensitivity_images, log, &sn)) != PRESSO_OK)
		return s;
	char *text = sensitivity_to_json(sn, ctx->layers);
	sensitivity_free(sn);
	if (!text)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	struct store_kv kv = {SENSITIVITY_STATE_KEY, text, strlen(text), true};
	s = store_put_state(st, study_id, &kv, 1);
	/* from here on the table as stored, as a resume will read it */
	if (s == PRESSO_OK)
		s = sensitivity_from_json(text, what, ctx->layers, ctx->n_layers, out);
	free(text);
	return s;
}

double sensitivity_drop(const struct sensitivity *sn, int layer, enum knob knob, double value)
{
	for (int i = 0; i < sn->n_entries; i++) {
		const struct sensitivity_entry *e = &sn->e[i];
		if (e->layer == layer && e->knob == knob && e->value == value)
			return e->drop;
	}
	return NAN;
}

void sensitivity_greedy_genome(const struct sensitivity *sn, const struct space *sp,
			       double budget, uint8_t *g)
{
	sensitivity_reference_genome(sp, g);
	double per_layer = budget / (sp->n_layers > 0 ? sp->n_layers : 1);
	for (int l = 0; l < sp->n_layers; l++)
		for (int m = 0; m < N_MEASURED; m++) {
			enum knob k = measured[m].knob;
			const struct knob_domain *d = &sp->ls[l].d[k];
			int gene = l * KNOB_COUNT + (int)k;
			for (int t = 0; t < d->n; t++) {
				int i = measured[m].cheap_low ? t : d->n - 1 - t;
				double drop = sensitivity_drop(sn, l, k, d->v[i]);
				if (!isnan(drop) && drop <= per_layer) {
					g[gene] = (uint8_t)i;
					break;
				}
			}
		}
}
