/* sensitivity.h - how much each layer alone costs in accuracy at each value
 * its space allows: the table `presso sensitivity` prints, that a study with
 * search.sensitivity measures once at its start, and that seeds its first
 * generation and the bandits' priors (search/README.md, "Sensitivity").
 *
 * The reference policy puts every layer at its space's most accurate choice:
 * the most weight and activation bits, bias correction on when allowed, the
 * smallest prune ratio, the largest rank. For each layer and each other value
 * of its bits, act_bits, prune and rank domains, the policy that changes that
 * one knob of that one layer is evaluated (trial_evaluate, the very build a
 * trial gets) on the first n_images of the validation split; its drop is the
 * reference's accuracy minus its own, in points, on the same images (paired,
 * so the reference's sampling noise cancels). A value equal to the reference
 * has drop 0 and is not evaluated. Accuracy rather than an output error
 * (logit MSE): it is the unit the search's objective and constraints speak,
 * it needs nothing the trials do not already compute, and it sees what
 * repair and bias correction fix, which a raw output error overstates. Its
 * resolution is 100 / n_images points (0.39 at 256 images).
 *
 * Stored in the study's search state under SENSITIVITY_STATE_KEY as JSON
 *   {"version": 1, "n_images": 256, "reference_accuracy": 91.4,
 *    "layers": ["conv1", ...],
 *    "entries": [[layer, "bits", value, drop], ...]}
 * and used as read back, so a resumed study neither measures it again nor
 * sees numbers other than its first run's.
 */
#ifndef PRESSO_SENSITIVITY_H
#define PRESSO_SENSITIVITY_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "db/store.h"
#include "evaluators/trial.h"
#include "search/space.h"

#define SENSITIVITY_STATE_KEY "sensitivity"

/* The greedy seeds' accuracy budgets, in points summed over the layers: each
 * layer may spend budget / n_layers (SENSITIVITY_N_BUDGETS of them). */
#define SENSITIVITY_N_BUDGETS 5
extern const double sensitivity_budgets[SENSITIVITY_N_BUDGETS];

/* A drop of this many points gives an arm the prior reward 1/e. */
#define SENSITIVITY_PRIOR_POINTS 2.0

struct sensitivity_entry {
	int layer;
	enum knob knob;   /* KNOB_BITS, KNOB_ACT_BITS, KNOB_PRUNE or KNOB_RANK */
	double value;
	double drop;      /* points of validation accuracy below the reference */
};

struct sensitivity {
	int n_layers;
	int64_t n_images;
	double reference_accuracy;
	int n_entries;
	struct sensitivity_entry *e; /* layer-major, knob, then value ascending */
};

/* Measures the table for ctx's model over sp's domains on the first n_images
 * (clamped to the validation split) of the validation split, a progress line
 * per layer on log when not NULL. Free *out with sensitivity_free(). */
enum presso_status sensitivity_measure(const struct study_ctx *ctx, const struct space *sp,
				       int64_t n_images, FILE *log, struct sensitivity **out);

/* The study's table: read from its search state, or measured
 * (sp->search.sensitivity_images), stored and read back. */
enum presso_status sensitivity_for_study(const struct study_ctx *ctx, const struct space *sp,
					 struct store *st, int64_t study_id, FILE *log,
					 struct sensitivity **out);

/* JSON text of the table (malloc'd; NULL when out of memory). */
char *sensitivity_to_json(const struct sensitivity *sn, const struct layer *layers);

/* Reads sensitivity_to_json's text for these layers; PRESSO_E_FORMAT naming
 * `what` if it does not fit them. */
enum presso_status sensitivity_from_json(const char *text, const char *what,
					 const struct layer *layers, int n_layers,
					 struct sensitivity **out);

void sensitivity_free(struct sensitivity *sn);

/* The drop of (layer, knob, value): 0 for the reference value, NAN if the
 * table has no such entry. */
double sensitivity_drop(const struct sensitivity *sn, int layer, enum knob knob, double value);

/* The reference genome: every layer at its most accurate choice. */
void sensitivity_reference_genome(const struct space *sp, uint8_t *g);

/* The greedy genome of a budget (points summed over the layers): the
 * reference, then per layer and measured knob the cheapest value (fewest bits,
 * lowest rank, highest prune ratio) whose drop is at most budget / n_layers. */
void sensitivity_greedy_genome(const struct sensitivity *sn, const struct space *sp,
			       double budget, uint8_t *g);

#endif
