-- schema.sql - presso's SQLite schema, as a list of forward migrations.
--
-- Each section opens with a line `-- @migration N` and takes a database from
-- schema version N-1 to N. store_open() applies the missing sections in order,
-- each in its own transaction, and each section ends by setting
-- PRAGMA user_version to N, so a database is always at a whole version. The
-- sections are numbered 1, 2, 3, ... without gaps; the highest is the version
-- this presso writes. Never edit a section that has been released: add one.
-- Every table and column is documented in db/README.md.
--
-- Times are Unix seconds (REAL, UTC); the views show them as text.

-- @migration 1
PRAGMA application_id = 1886548851; -- 0x70727373, 'prss': marks a presso database

CREATE TABLE studies (
	id                 INTEGER PRIMARY KEY,
	name               TEXT NOT NULL UNIQUE CHECK (length(name) BETWEEN 1 AND 128),
	config_json        TEXT NOT NULL,
	config_sha256      TEXT NOT NULL CHECK (length(config_sha256) = 64),
	model_path         TEXT NOT NULL,
	model_sha256       TEXT NOT NULL CHECK (length(model_sha256) = 64),
	dataset            TEXT NOT NULL,
	seed               INTEGER NOT NULL,
	fp32_accuracy      REAL NOT NULL CHECK (fp32_accuracy BETWEEN 0 AND 100),
	fp32_test_accuracy REAL CHECK (fp32_test_accuracy BETWEEN 0 AND 100),
	fp32_size_bytes    INTEGER NOT NULL CHECK (fp32_size_bytes > 0),
	fp32_bops          REAL NOT NULL CHECK (fp32_bops >= 0),
	fp32_latency_us    REAL CHECK (fp32_latency_us >= 0),
	n_classes          INTEGER NOT NULL CHECK (n_classes >= 2),
	presso_version     TEXT NOT NULL,
	status             TEXT NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'finished')),
	created_at         REAL NOT NULL,
	finished_at        REAL
);

CREATE TABLE trials (
	id            INTEGER PRIMARY KEY,
	study_id      INTEGER NOT NULL REFERENCES studies (id) ON DELETE CASCADE,
	number        INTEGER NOT NULL CHECK (number >= 1),
	state         TEXT NOT NULL CHECK (state IN ('running', 'complete', 'failed')),
	policy_json   TEXT NOT NULL,
	policy_sha256 TEXT NOT NULL CHECK (length(policy_sha256) = 64),
	worker        TEXT NOT NULL DEFAULT '',
	started_at    REAL NOT NULL,
	heartbeat_at  REAL NOT NULL,
	ended_at      REAL,
	accuracy      REAL CHECK (accuracy BETWEEN 0 AND 100),
	test_accuracy REAL CHECK (test_accuracy BETWEEN 0 AND 100),
	size_bytes    INTEGER CHECK (size_bytes > 0),
	bops          REAL CHECK (bops >= 0),
	latency_us    REAL CHECK (latency_us >= 0),
	mean_bits     REAL,
	mean_prune    REAL,
	mean_rank     REAL,
	error         TEXT,
	lost          INTEGER NOT NULL DEFAULT 0 CHECK (lost IN (0, 1)),
	UNIQUE (study_id, number),
	CHECK (state <> 'complete' OR (accuracy IS NOT NULL AND size_bytes IS NOT NULL AND
				       bops IS NOT NULL AND ended_at IS NOT NULL)),
	CHECK (state <> 'failed' OR (error IS NOT NULL AND ended_at IS NOT NULL)),
	CHECK (lost = 0 OR state = 'failed')
);
CREATE INDEX trials_by_policy ON trials (study_id, policy_sha256);
CREATE INDEX trials_by_state ON trials (study_id, state);

CREATE TABLE trial_layers (
	trial_id        INTEGER NOT NULL REFERENCES trials (id) ON DELETE CASCADE,
	idx             INTEGER NOT NULL CHECK (idx >= 0),
	layer           TEXT NOT NULL,
	bits            INTEGER NOT NULL CHECK (bits BETWEEN 1 AND 32),
	act_bits        INTEGER NOT NULL CHECK (act_bits BETWEEN 1 AND 32),
	bias_correction INTEGER NOT NULL CHECK (bias_correction IN (0, 1)),
	prune           REAL NOT NULL CHECK (prune >= 0 AND prune < 1),
	prune_kind      TEXT NOT NULL CHECK (prune_kind IN ('unstructured', 'structured')),
	rank            REAL NOT NULL CHECK (rank > 0 AND rank <= 1),
	PRIMARY KEY (trial_id, idx),
	UNIQUE (trial_id, layer)
);

CREATE TABLE search_state (
	study_id     INTEGER NOT NULL REFERENCES studies (id) ON DELETE CASCADE,
	key          TEXT NOT NULL CHECK (length(key) >= 1),
	value        BLOB,
	trial_number INTEGER,
	updated_at   REAL NOT NULL,
	PRIMARY KEY (study_id, key)
);

-- One row per trial with its metrics and the derived columns the --where and
-- --pick expressions name (db/expr.h): `sqlite3 runs.db 'select * from v_trials'`.
CREATE VIEW v_trials AS
SELECT
	s.name                                         AS study,
	t.number                                       AS trial,
	t.state                                        AS state,
	t.accuracy                                     AS accuracy,
	round(s.fp32_accuracy - t.accuracy, 9)         AS accuracy_drop, -- 16.01 - 15.01 is 1, not 1.0000000000000018
	t.test_accuracy                                AS test_accuracy,
	t.size_bytes / 1024.0                          AS size_kb,
	CAST(s.fp32_size_bytes AS REAL) / t.size_bytes AS ratio,
	t.bops                                         AS bops,
	t.latency_us                                   AS latency_us,
	t.mean_bits                                    AS mean_bits,
	t.mean_prune                                   AS mean_prune,
	t.mean_rank                                    AS mean_rank,
	t.worker                                       AS worker,
	datetime(t.started_at, 'unixepoch')            AS started,
	round(t.ended_at - t.started_at, 3)            AS seconds,
	t.error                                        AS error,
	t.size_bytes                                   AS size_bytes,
	t.size_bytes / 1048576.0                       AS size_mb,
	t.latency_us / 1000.0                          AS latency_ms,
	t.policy_sha256                                AS policy_sha256,
	t.policy_json                                  AS policy,
	t.study_id                                     AS study_id,
	t.id                                           AS trial_id
FROM trials t JOIN studies s ON s.id = t.study_id;

-- The per-layer choices of every trial, by name.
CREATE VIEW v_trial_layers AS
SELECT
	s.name AS study, t.number AS trial, t.state AS state, l.idx AS idx, l.layer AS layer,
	l.bits AS bits, l.act_bits AS act_bits, l.bias_correction AS bias_correction,
	l.prune AS prune, l.prune_kind AS prune_kind, l.rank AS rank
FROM trial_layers l JOIN trials t ON t.id = l.trial_id JOIN studies s ON s.id = t.study_id;

PRAGMA user_version = 1;

-- @migration 2
-- Fine-tuned results (issue: fine-tuning). A fine-tuned model is a trial row of
-- its own, complete from the moment it is inserted, with parent_trial naming the
-- PTQ trial (same study, same policy) it was tuned from; its training settings,
-- timings and the tuned model itself (a .presso file's bytes: the policy alone
-- rebuilds only the PTQ weights) are in finetunes. PTQ trials keep
-- parent_trial NULL: the search counts, re-queues and learns from those only.
ALTER TABLE trials ADD COLUMN parent_trial INTEGER CHECK (parent_trial IS NULL OR parent_trial >= 1);
CREATE INDEX trials_by_parent ON trials (study_id, parent_trial);

CREATE TABLE finetunes (
	trial_id      INTEGER PRIMARY KEY REFERENCES trials (id) ON DELETE CASCADE,
	source        TEXT NOT NULL CHECK (source IN ('search', 'finetune')),
	settings_json TEXT NOT NULL,
	steps         INTEGER NOT NULL CHECK (steps >= 0),
	epochs        INTEGER NOT NULL CHECK (epochs >= 0),
	lr            REAL NOT NULL CHECK (lr >= 0),
	kd_weight     REAL NOT NULL CHECK (kd_weight BETWEEN 0 AND 1),
	temperature   REAL NOT NULL CHECK (temperature > 0),
	train_seconds REAL NOT NULL CHECK (train_seconds >= 0),
	images_per_s  REAL CHECK (images_per_s >= 0),
	model         BLOB NOT NULL,
	model_sha256  TEXT NOT NULL CHECK (length(model_sha256) = 64)
);

-- The number of validation images each trial's accuracy was measured on, so
-- that an accuracy comes with its confidence interval (`presso pareto`, and
-- `accuracy_drop <= 1 at 95%` in --where / --pick). Trials of older studies
-- get the validation split their config names (data.splits.validation, 5000
-- when the config leaves it out) when their accuracy is a whole number of
-- images of it; otherwise it stays NULL: not known, and no interval.
ALTER TABLE trials ADD COLUMN n_images INTEGER CHECK (n_images >= 1);

UPDATE trials SET n_images = (
	SELECT coalesce(json_extract(s.config_json, '$.data.splits.validation'), 5000)
	FROM studies s WHERE s.id = trials.study_id)
WHERE accuracy IS NOT NULL;
UPDATE trials SET n_images = NULL
WHERE n_images IS NOT NULL AND (typeof(n_images) <> 'integer' OR n_images < 1 OR
	abs(accuracy * n_images / 100.0 - round(accuracy * n_images / 100.0)) > 1e-6);

DROP VIEW v_trials;
CREATE VIEW v_trials AS
SELECT
	s.name                                         AS study,
	t.number                                       AS trial,
	t.state                                        AS state,
	t.accuracy                                     AS accuracy,
	round(s.fp32_accuracy - t.accuracy, 9)         AS accuracy_drop, -- 16.01 - 15.01 is 1, not 1.0000000000000018
	t.test_accuracy                                AS test_accuracy,
	t.size_bytes / 1024.0                          AS size_kb,
	CAST(s.fp32_size_bytes AS REAL) / t.size_bytes AS ratio,
	t.bops                                         AS bops,
	t.latency_us                                   AS latency_us,
	t.mean_bits                                    AS mean_bits,
	t.mean_prune                                   AS mean_prune,
	t.mean_rank                                    AS mean_rank,
	t.worker                                       AS worker,
	datetime(t.started_at, 'unixepoch')            AS started,
	round(t.ended_at - t.started_at, 3)            AS seconds,
	t.error                                        AS error,
	t.size_bytes                                   AS size_bytes,
	t.size_bytes / 1048576.0                       AS size_mb,
	t.latency_us / 1000.0                          AS latency_ms,
	t.policy_sha256                                AS policy_sha256,
	t.policy_json                                  AS policy,
	t.study_id                                     AS study_id,
	t.id                                           AS trial_id,
	(t.parent_trial IS NOT NULL)                   AS tuned,
	t.parent_trial                                 AS tuned_from,
	t.n_images                                     AS n_images
FROM trials t JOIN studies s ON s.id = t.study_id;

-- One row per fine-tuned trial beside the PTQ trial it came from.
CREATE VIEW v_finetunes AS
SELECT
	s.name             AS study,
	t.number           AS trial,
	p.number           AS tuned_from,
	f.source           AS source,
	p.accuracy         AS ptq_accuracy,
	t.accuracy         AS accuracy,
	p.test_accuracy    AS ptq_test_accuracy,
	t.test_accuracy    AS test_accuracy,
	t.size_bytes       AS size_bytes,
	f.steps            AS steps,
	f.epochs           AS epochs,
	f.lr               AS lr,
	f.kd_weight        AS kd_weight,
	f.temperature      AS temperature,
	f.train_seconds    AS train_seconds,
	f.images_per_s     AS images_per_s,
	length(f.model)    AS model_bytes,
	f.model_sha256     AS model_sha256,
	f.settings_json    AS settings
FROM finetunes f JOIN trials t ON t.id = f.trial_id JOIN studies s ON s.id = t.study_id
JOIN trials p ON p.study_id = t.study_id AND p.number = t.parent_trial;

PRAGMA user_version = 2;

-- @migration 3
-- Multi-fidelity search (search.fidelity). A candidate is first scored on the
-- first low_n_images images of the validation split (low_accuracy); only one
-- that could reach the front is then scored on the whole split. A trial that
-- was not promoted is complete with fidelity 'low': its accuracy and n_images
-- are those of the subset. A promoted trial is 'full': accuracy and n_images
-- of the whole split, its low-fidelity pass kept beside them. Trials without a
-- low-fidelity pass (every trial before this version, and a search without
-- search.fidelity) are 'full' with low_accuracy and low_n_images NULL. Fronts,
-- --pick and the search's archive take 'full' trials only.
ALTER TABLE trials ADD COLUMN fidelity TEXT NOT NULL DEFAULT 'full'
	CHECK (fidelity IN ('full', 'low'));
ALTER TABLE trials ADD COLUMN low_accuracy REAL CHECK (low_accuracy BETWEEN 0 AND 100);
ALTER TABLE trials ADD COLUMN low_n_images INTEGER CHECK (low_n_images >= 1);
-- A front trial whose accuracy interval straddled an accuracy bound
-- (constraints.confidence) re-scored on more images than the validation split
-- (search.rescore_images): accuracy and n_images become those of the split and
-- the extra images together, and valid_accuracy keeps the split's alone.
ALTER TABLE trials ADD COLUMN valid_accuracy REAL CHECK (valid_accuracy BETWEEN 0 AND 100);

DROP VIEW v_trials;
CREATE VIEW v_trials AS
SELECT
	s.name                                         AS study,
	t.number                                       AS trial,
	t.state                                        AS state,
	t.accuracy                                     AS accuracy,
	round(s.fp32_accuracy - t.accuracy, 9)         AS accuracy_drop, -- 16.01 - 15.01 is 1, not 1.0000000000000018
	t.test_accuracy                                AS test_accuracy,
	t.size_bytes / 1024.0                          AS size_kb,
	CAST(s.fp32_size_bytes AS REAL) / t.size_bytes AS ratio,
	t.bops                                         AS bops,
	t.latency_us                                   AS latency_us,
	t.mean_bits                                    AS mean_bits,
	t.mean_prune                                   AS mean_prune,
	t.mean_rank                                    AS mean_rank,
	t.worker                                       AS worker,
	datetime(t.started_at, 'unixepoch')            AS started,
	round(t.ended_at - t.started_at, 3)            AS seconds,
	t.error                                        AS error,
	t.size_bytes                                   AS size_bytes,
	t.size_bytes / 1048576.0                       AS size_mb,
	t.latency_us / 1000.0                          AS latency_ms,
	t.policy_sha256                                AS policy_sha256,
	t.policy_json                                  AS policy,
	t.study_id                                     AS study_id,
	t.id                                           AS trial_id,
	(t.parent_trial IS NOT NULL)                   AS tuned,
	t.parent_trial                                 AS tuned_from,
	t.n_images                                     AS n_images,
	t.fidelity                                     AS fidelity,
	t.low_accuracy                                 AS low_accuracy,
	t.low_n_images                                 AS low_n_images,
	t.valid_accuracy                               AS valid_accuracy
FROM trials t JOIN studies s ON s.id = t.study_id;

PRAGMA user_version = 3;
