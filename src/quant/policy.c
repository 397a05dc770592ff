/* policy.c - policy JSON: parsing with field paths in errors, shorthands,
 * canonical output (see policy.h). */
#define _POSIX_C_SOURCE 200809L
#include "quant/policy.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/fileio.h"
#include "base/json_get.h"

struct layer_policy policy_default_layer(void)
{
	return (struct layer_policy){.bits = 8, .act_bits = 8, .bias_correction = false,
				     .prune = 0.0, .prune_kind = PRUNE_UNSTRUCTURED, .rank = 1.0};
}

static const char *const FIELDS[] = {"bits", "act_bits", "bias_correction", "prune",
				     "prune_kind", "rank", NULL};

/* Overrides the fields of *lp present in obj (path names obj in messages). */
static enum presso_status read_entry(const cJSON *obj, const char *path, struct layer_policy *lp)
{
	enum presso_status s;
	if (!cJSON_IsObject(obj))
		return status_fail(PRESSO_E_CONFIG, "%s: expected an object", path);
	if ((s = json_check_keys(obj, path, FIELDS)) != PRESSO_OK)
		return s;
	int64_t bits = lp->bits, act = lp->act_bits;
	double prune = lp->prune, rank = lp->rank;
	const char *kind = NULL;
	static const char *const kinds[] = {"unstructured", "structured", NULL};
	if ((s = json_get_int(obj, path, "bits", false, 1, 8, &bits)) ||
	    (s = json_get_int(obj, path, "act_bits", false, 4, 8, &act)) ||
	    (s = json_get_bool(obj, path, "bias_correction", false, &lp->bias_correction)) ||
	    (s = json_get_double(obj, path, "prune", false, 0.0, 0.95, &prune)) ||
	    (s = json_get_string(obj, path, "prune_kind", false, kinds, &kind)) ||
	    (s = json_get_double(obj, path, "rank", false, 0.0, 1e9, &rank)))
		return s;
	lp->bits = (int)bits;
	lp->act_bits = (int)act;
	lp->prune = prune;
	lp->rank = rank;
	if (kind)
		lp->prune_kind = strcmp(kind, "structured") == 0 ? PRUNE_STRUCTURED : PRUNE_UNSTRUCTURED;
	if (!(lp->rank > 0.0))
		return status_fail(PRESSO_E_CONFIG,
				   "%s.rank: %g is not a rank (a fraction of full rank in (0, 1], or an integer >= 2)",
				   path, lp->rank);
	if (lp->rank > 1.0 && lp->rank != floor(lp->rank))
		return status_fail(PRESSO_E_CONFIG,
				   "%s.rank: %g is neither a fraction in (0, 1] nor an integer rank", path,
				   lp->rank);
	return PRESSO_OK;
}

enum presso_status policy_uniform(const struct layer_policy *lp, int n_layers,
				  struct policy **out)
{
	struct policy *p = calloc(1, sizeof *p);
	if (p)
		p->layers = calloc((size_t)(n_layers ? n_layers : 1), sizeof *p->layers);
	if (!p || !p->layers) {
		policy_free(p);
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	}
	p->n_layers = n_layers;
	for (int i = 0; i < n_layers; i++)
		p->layers[i] = *lp;
	*out = p;
	return PRESSO_OK;
}

int64_t policy_full_rank(const struct layer *l)
{
	int64_t k = l->c_in * l->kh * l->kw;
	return l->c_out < k ? l->c_out : k;
}

int64_t policy_rank_of(const struct layer *l, double rank)
{
	int64_t full = policy_full_rank(l);
	if (rank > 1.0)
		return (int64_t)rank;
	int64_t r = (int64_t)floor(rank * (double)full + 0.5);
	return r < 1 ? 1 : r;
}

enum presso_status policy_check_layer(const struct layer *l, const struct layer_policy *lp)
{
	if (lp->rank > 1.0 && (int64_t)lp->rank > policy_full_rank(l))
		return status_fail(PRESSO_E_CONFIG,
				   "layers.%s.rank: %lld is above the layer's full rank %lld (min of %lld outputs and %lld inputs)",
				   l->name, (long long)lp->rank, (long long)policy_full_rank(l),
				   (long long)l->c_out, (long long)(l->c_in * l->kh * l->kw));
	if (lp->prune > 0 && lp->prune_kind == PRUNE_STRUCTURED) {
		int64_t removed = (int64_t)floor(lp->prune * (double)l->c_out + 0.5);
		if (removed >= l->c_out)
			return status_fail(PRESSO_E_CONFIG,
					   "layers.%s.prune: %g of %lld output channels removes every channel",
					   l->name, lp->prune, (long long)l->c_out);
	}
	return PRESSO_OK;
}

enum presso_status policy_copy(const struct policy *p, struct policy **out)
{
	struct layer_policy id = policy_default_layer();
	enum presso_status s = policy_uniform(&id, p->n_layers, out);
	if (s == PRESSO_OK && p->n_layers)
		memcpy((*out)->layers, p->layers, sizeof *p->layers * (size_t)p->n_layers);
	return s;
}

enum presso_status policy_parse(const char *text, const char *where, const struct layer *layers,
				int n_layers, struct policy **out)
{
	*out = NULL;
	const char *end = NULL;
	bool oom;
	cJSON *doc = json_parse(text, &end, false, &oom);
	if (!doc && oom)
		return status_fail(PRESSO_E_NOMEM, "%s: out of memory reading the policy", where);
	if (!doc) {
		int line = 1, col = 1;
		for (const char *c = text; end && c < end && *c; c++) {
			if (*c == '\n') {
				line++;
				col = 1;
			} else {
				col++;
			}
		}
		return status_fail(PRESSO_E_CONFIG, "%s:%d:%d: invalid JSON", where, line, col);
	}
	enum presso_status s;
	struct policy *p = NULL;
	struct layer_policy dflt = policy_default_layer();
	static const char *const top[] = {"default", "layers", "metadata", NULL};
	if (!cJSON_IsObject(doc)) {
		s = status_fail(PRESSO_E_CONFIG, "%s: a policy is a JSON object", where);
		goto done;
	}
	if ((s = json_check_keys(doc, "", top)) != PRESSO_OK)
		goto wrap;
	const cJSON *d = cJSON_GetObjectItemCaseSensitive(doc, "default");
	if (d && (s = read_entry(d, "default", &dflt)) != PRESSO_OK)
		goto wrap;
	if ((s = policy_uniform(&dflt, n_layers, &p)) != PRESSO_OK)
		goto done;
	const cJSON *ls = cJSON_GetObjectItemCaseSensitive(doc, "layers");
	if (ls && !cJSON_IsObject(ls)) {
		s = status_fail(PRESSO_E_CONFIG, "layers: expected an object keyed by layer name");
		goto wrap;
	}
	for (const cJSON *e = ls ? ls->child : NULL; e; e = e->next) {
		int found = -1;
		for (int i = 0; i < n_layers && found < 0; i++)
			if (strcmp(layers[i].name, e->string) == 0)
				found = i;
		char path[512];
		snprintf(path, sizeof path, "layers.%s", e->string);
		if (found < 0) {
			s = status_fail(PRESSO_E_CONFIG,
					"%s: no such layer in the model (its %d layers are '%s'%s%s%s ... see presso info)",
					path, n_layers, n_layers ? layers[0].name : "",
					n_layers > 1 ? ", '" : "", n_layers > 1 ? layers[1].name : "",
					n_layers > 1 ? "'" : "");
			goto wrap;
		}
		/* cJSON keeps both entries of a repeated key: refuse it, as every
		 * other repeated key is refused (json_check_keys) */
		for (const cJSON *o = ls->child; o != e; o = o->next)
			if (strcmp(o->string, e->string) == 0) {
				s = status_fail(PRESSO_E_CONFIG,
						"%s: the layer appears twice (give each layer once)",
						path);
				goto wrap;
			}
		if ((s = read_entry(e, path, &p->layers[found])) != PRESSO_OK)
			goto wrap;
	}
	for (int i = 0; i < n_layers; i++)
		if ((s = policy_check_layer(&layers[i], &p->layers[i])) != PRESSO_OK)
			goto wrap;
	*out = p;
	p = NULL;
	s = PRESSO_OK;
	goto done;
wrap:
	status_wrap(s, "%s", where);
done:
	policy_free(p);
	cJSON_Delete(doc);
	return s;
}

enum presso_status policy_load(const char *path_or_shorthand, const struct layer *layers,
			       int n_layers, struct policy **out)
{
	*out = NULL;
	struct layer_policy lp = policy_default_layer();
	if (strcmp(path_or_shorthand, "int8") == 0)
		return policy_uniform(&lp, n_layers, out);
	if (strcmp(path_or_shorthand, "int4") == 0) {
		lp.bits = 4;
		enum presso_status s = policy_uniform(&lp, n_layers, out);
		if (s == PRESSO_OK && n_layers > 0) {
			(*out)->layers[0].bits = 8;
			(*out)->layers[n_layers - 1].bits = 8;
		}
		return s;
	}
	char *text;
	size_t n;
	enum presso_status rs = file_read_all(path_or_shorthand, "a policy file", 0, &text, &n);
	if (rs == PRESSO_E_IO) {
		char why[512];
		snprintf(why, sizeof why, "%s", status_msg());
		return status_fail(rs, "%s (a policy is a JSON file, or int8 / int4)", why);
	}
	if (rs != PRESSO_OK)
		return rs;
	enum presso_status s = policy_parse(text, path_or_shorthand, layers, n_layers, out);
	free(text);
	return s;
}

/* A number written so that it reads back as the same double: cJSON prints 15
 * significant digits whenever they come within DBL_EPSILON of the value, which
 * can be the neighbouring double (0.50000000000000011 would come back as 0.5).
 * Integers and values 15 digits hold exactly read as cJSON writes them. */
static void add_exact_number(cJSON *o, const char *key, double v)
{
	char buf[32];
	snprintf(buf, sizeof buf, "%.15g", v);
	if (strtod(buf, NULL) != v)
		snprintf(buf, sizeof buf, "%.17g", v);
	cJSON_AddRawToObject(o, key, buf);
}

static void add_fields(cJSON *o, const struct layer_policy *lp, const struct layer_policy *base)
{
	if (!base || lp->bits != base->bits)
		cJSON_AddNumberToObject(o, "bits", lp->bits);
	if (!base || lp->act_bits != base->act_bits)
		cJSON_AddNumberToObject(o, "act_bits", lp->act_bits);
	if (!base || lp->bias_correction != base->bias_correction)
		cJSON_AddBoolToObject(o, "bias_correction", lp->bias_correction);
	if (!base || lp->prune != base->prune)
		add_exact_number(o, "prune", lp->prune);
	if (!base || lp->prune_kind != base->prune_kind)
		cJSON_AddStringToObject(o, "prune_kind",
					lp->prune_kind == PRUNE_STRUCTURED ? "structured" : "unstructured");
	if (!base || lp->rank != base->rank)
		add_exact_number(o, "rank", lp->rank);
}

char *policy_to_json(const struct policy *p, const struct layer *layers)
{
	struct layer_policy dflt = policy_default_layer();
	unsigned since = json_failures();
	cJSON *doc = cJSON_CreateObject();
	cJSON *d = cJSON_AddObjectToObject(doc, "default");
	add_fields(d, &dflt, NULL);
	cJSON *ls = cJSON_AddObjectToObject(doc, "layers");
	for (int i = 0; i < p->n_layers; i++) {
		cJSON *o = cJSON_CreateObject();
		add_fields(o, &p->layers[i], &dflt);
		if (o && o->child)
			cJSON_AddItemToObject(ls, layers[i].name, o);
		else
			cJSON_Delete(o);
	}
	char *text = json_print(doc, true, since);
	cJSON_Delete(doc);
	return text;
}

void policy_free(struct policy *p)
{
	if (!p)
		return;
	free(p->layers);
	free(p);
}
