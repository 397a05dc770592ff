/* evolution.h - NSGA-II's operators over the space's genomes (Deb et al.
 * 2002): environmental selection by constraint-domination rank and crowding
 * distance, binary tournament, uniform crossover across layers, mutation,
 * and the single-step mutation "arms" the hybrid strategy's bandit chooses.
 *
 * Population members are archive indices; their objective values, violations
 * and genomes come from the archive.
 */
#ifndef PRESSO_EVOLUTION_H
#define PRESSO_EVOLUTION_H

#include <stdbool.h>
#include <stdint.h>

#include "search/archive.h"
#include "base/rng.h"
#include "search/space.h"

/* Environmental selection: of the n candidates (archive indices), keeps
 * min(n, n_keep): whole constraint-domination fronts in rank order, the last
 * one cut by decreasing crowding distance (ties to the lower trial number).
 * Writes keep[] (room for n_keep), *n_kept, and for each kept member its rank
 * and its crowding distance within its front among the kept (rank[], crowd[]
 * parallel to keep[], each with room for n_keep). */
enum presso_status evolution_select(const struct archive *a, const int *cand, int n, int n_keep,
				    int *keep, int *n_kept, int *rank, double *crowd);

/* Rank and crowding distance (within its rank) of each of n members, in the
 * given order: what evolution_select writes for the population it keeps. */
enum presso_status evolution_rank_crowd(const struct archive *a, const int *members, int n,
					int *rank, double *crowd);

/* Binary tournament among n >= 1 members: two drawn at random, the lower rank
 * wins, then the larger crowding distance, then the first drawn. Returns the
 * winner's position. */
int evolution_tournament(const int *rank, const double *crowd, int n, struct rng *r);

/* Uniform crossover across layers: each layer's choices come whole from
 * parent a or b with probability 1/2. */
void evolution_crossover(const struct space *sp, const uint8_t *a, const uint8_t *b,
			 struct rng *r, uint8_t *child);

/* Mutates each free gene with probability rate: one step up or down the
 * domain (a neighbour value) with probability 0.8, else a random other value.
 * Returns the number of genes changed. */
int evolution_mutate(const struct space *sp, uint8_t *g, double rate, struct rng *r);

/* Single-step mutation arms: arm 2*i moves free gene i one step down its
 * domain (fewer bits, bias correction off), arm 2*i + 1 one step up. */
int evolution_n_arms(const struct space *sp);

/* allowed[arm] = the move stays inside the domain for genome g. */
void evolution_arms_allowed(const struct space *sp, const uint8_t *g, bool *allowed);

/* Applies an allowed arm to g. */
void evolution_apply_arm(const struct space *sp, uint8_t *g, int arm);

/* "layer '/fc1/Gemm' bits down" into buf. */
void evolution_arm_name(const struct space *sp, int arm, char *buf, int cap);

#endif
