/* onnx_import.c - ONNX model -> graph IR.
 *
 * Parsing uses the protobuf-c bindings generated at build time from the
 * system's onnx.proto. The import runs in passes:
 *   1. tensors: initializers (raw_data, typed fields, external data beside the
 *      model) become constant values; graph inputs that are not initializers
 *      become runtime inputs (float32; dim 0 symbolic = the batch);
 *   1b. every node whose op presso lacks is listed, and the model refused;
 *   2. nodes, in file order (ONNX requires topological order): Constant nodes
 *      become constants; Dropout becomes Identity; attributes are validated
 *      (an unknown attribute is an error, never ignored); constant inputs that
 *      act as attributes (Clip bounds, Reshape shape, Squeeze axes, Pad pads)
 *      are read; a node whose inputs are all constant is evaluated now with
 *      the reference kernels and becomes a constant (constant folding), int64
 *      ones (shape arithmetic) here; Shape, Size, ConstantOfShape, Gather and
 *      Slice must fold: Shape reads the shape of its input from the nodes so
 *      far, a dimension that follows the batch as SYM_DIM (below); 1-D
 *      convolutions and pools become 2-D ones of height 1 (import_lifted);
 *   3. shapes at batch 1, resolving auto_pad into explicit pads;
 *   4. BatchNormalization folded into the Conv/Gemm before it when that node's
 *      output has no other reader; MatMul + Add(bias) on a 2-D input -> Gemm;
 *   5. dead nodes dropped, values compacted, shapes at batch 1 and 2 decide
 *      which values follow the batch.
 * Every error names the node, its op and the reason; nothing is half-built.
 */
#define _POSIX_C_SOURCE 200809L
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/fileio.h"
#include "model/engine.h"
#include "model/graph.h"
#include "onnx.pb-c.h"

/* Entries of an int64 constant made from the Shape of a batched tensor stand
 * for a dimension that follows the batch size, unknown until the engine runs:
 * SYM_DIM(k) is the dimension that is k at batch 1 (and 2k at batch 2). Such
 * entries pass through Gather, Concat, Slice, Squeeze, Unsqueeze and Cast,
 * and through Mul by a positive constant and Div by one that divides k
 * (still linear in the batch). A Reshape takes one as 0 (copy) where its
 * input has that very dimension, or one as -1; anything else that needs the
 * value (ConstantOfShape, Add, a product of two) refuses the model. Real
 * entries never come near INT64_MIN. */
#define SYM_BASE INT64_MIN
#define SYM_DIM(k) (SYM_BASE + (k))

static bool is_sym(int64_t v)
{
	return v >= SYM_BASE && v <= SYM_DIM(GRAPH_MAX_ELEMS);
}


/* The newest ai.onnx opset whose operators (those of op_names[] below) presso
 * implements as specified; a newer model may use semantics presso lacks. */
#define ONNX_MAX_OPSET 18

/* Largest kernel size, stride, dilation and padding per side: far past any real
 * model, and small enough that the window arithmetic of shape inference and the
 * kernels stays far from overflow (also the bound of the .presso format). */
#define MAX_WINDOW 1024

struct builder {
	struct graph *g;
	int cap_values, cap_nodes;
	/* name -> value index: open addressing, size a power of two */
	int *slots;
	int n_slots;
	const char *base_dir;
	int64_t opset;
	const Onnx__GraphProto *gp; /* the graph being imported */
	bool keep_batchnorm; /* graph_load_opts: leave BatchNormalization unfolded */
	int64_t folded_bytes; /* of the constants made at load (fold_budget) */
	struct lifted {
		int v3, v4; /* a 3-D value and its [N, C, 1, L] twin (import_lifted) */
	} *lifted;
	int n_lifted, cap_lifted;
	bool lifting; /* import_node called from import_lifted */
	/* values that are zeros of a shape that follows the batch (PyTorch's
	 * initial states of an LSTM, GRU or RNN: ConstantOfShape of [dirs,
	 * Shape(x)[0], hidden]): no node computes them; import_rnn takes them as
	 * the zero states they are, and any other reader is refused */
	char **batch_zeros; /* per value: the ConstantOfShape node's name, or NULL */
	int n_batch_zeros;
	int n_rnn; /* LSTM, GRU and RNN nodes imported */
};

static bool is_batch_zeros(const struct builder *b, int v)
{
	return v >= 0 && v < b->n_batch_zeros && b->batch_zeros[v];
}

/* Marks value v as zeros of the batch size made by node `node`. */
static enum presso_status mark_batch_zeros(struct builder *b, int v, const char *node)
{
	if (v >= b->n_batch_zeros) {
		int n = v + 64;
		char **grown = realloc(b->batch_zeros, sizeof(char *) * (size_t)n);
		if (!grown)
			return status_fail(PRESSO_E_NOMEM, "out of memory");
		memset(grown + b->n_batch_zeros, 0, sizeof(char *) * (size_t)(n - b->n_batch_zeros));
		b->batch_zeros = grown;
		b->n_batch_zeros = n;
	}
	free(b->batch_zeros[v]);
	if (!(b->batch_zeros[v] = strdup(node)))
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	return PRESSO_OK;
}

static enum presso_status refuse_batch_zeros(const struct builder *b, int v, const char *reader)
{
	return status_fail(PRESSO_E_UNSUPPORTED,
			   "node '%s': ConstantOfShape of a shape that depends on the batch size (the Shape of a batched tensor) is not supported, but as the initial state of an LSTM, GRU or RNN: its output '%s' is read by node '%s'",
			   b->batch_zeros[v], b->g->values[v].name, reader);
}

/* The most bytes of constants that folding at load may make in a model, each
 * fold's output counted whole: ConstantOfShape, Expand and broadcasts turn a
 * few bytes of a model into as many elements as they name, and each fold of
 * such a constant copies it again, so a malformed file could make presso
 * allocate gigabytes. A model's real ones (shapes, masks, tokens, the weights
 * of a QDQ export) are far smaller. */
#define FOLD_MAX_BYTES ((int64_t)1 << 30)

static enum presso_status prefix_shape(struct builder *b, int v, int64_t *dims, int *rank);
static enum presso_status add_const_value(struct builder *b, const char *name, const char *suffix,
					  const struct shape *sh, const float *src, int *v);
static enum presso_status add_op_node(struct builder *b, enum op_type op, const char *name,
				      const char *suffix, int a, int c, int out_v,
				      const struct node_attrs *attrs);
static enum presso_status fold_budget(struct builder *b, const char *name, const char *op,
				      int64_t count, size_t elem_bytes);
static enum presso_status slice_one_axis(struct builder *b, const char *name, int x,
					 const struct shape *xs, int axis, int64_t first,
					 int64_t count, int64_t step, int out_v);

/* --- name map ------------------------------------------------------------- */

static uint64_t hash_str(const char *s)
{
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ull;
	return h;
}

static int map_find(const struct builder *b, const char *name)
{
	if (!b->n_slots)
		return -1;
	size_t mask = (size_t)b->n_slots - 1;
	for (size_t i = hash_str(name) & mask;; i = (i + 1) & mask) {
		int v = b->slots[i];
		if (v < 0)
			return -1;
		if (strcmp(b->g->values[v].name, name) == 0)
			return v;
	}
}

static bool map_put(struct builder *b, int v)
{
	if (2 * (b->g->n_values + 1) > b->n_slots) {
		int n = b->n_slots ? b->n_slots * 2 : 256;
		int *slots = malloc(sizeof(int) * (size_t)n);
		if (!slots)
			return false;
		for (int i = 0; i < n; i++)
			slots[i] = -1;
		int *old = b->slots;
		int n_old = b->n_slots;
		b->slots = slots;
		b->n_slots = n;
		for (int i = 0; i < n_old; i++)
			if (old[i] >= 0 && old[i] != v)
				map_put(b, old[i]);
		free(old);
	}
	size_t mask = (size_t)b->n_slots - 1;
	size_t i = hash_str(b->g->values[v].name) & mask;
	while (b->slots[i] >= 0 && b->slots[i] != v)
		i = (i + 1) & mask;
	b->slots[i] = v;
	return true;
}

/* Appends a value called name; returns its index or -1 (message set). */
/* *v = the value named `in`, which node `node` (op `op`) reads: an error
 * naming them when nothing earlier produces it. */
static enum presso_status find_input(const struct builder *b, const char *node, const char *op,
				     const char *in, int *v)
{
	*v = map_find(b, in);
	if (*v >= 0)
		return PRESSO_OK;
	return status_fail(PRESSO_E_FORMAT,
			   "node '%s': %s input '%s' is not produced by any earlier node, initializer or graph input",
			   node, op, in);
}

static int add_value(struct builder *b, const char *name)
{
	struct graph *g = b->g;
	if (g->n_values == b->cap_values) {
		int cap = b->cap_values ? b->cap_values * 2 : 64;
		struct value *nv = realloc(g->values, sizeof *nv * (size_t)cap);
		if (!nv) {
			status_fail(PRESSO_E_NOMEM, "out of memory");
			return -1;
		}
		g->values = nv;
		b->cap_values = cap;
	}
	int v = g->n_values;
	struct value *val = &g->values[v];
	memset(val, 0, sizeof *val);
	val->producer = -1;
	val->name = strdup(name);
	if (!val->name) {
		status_fail(PRESSO_E_NOMEM, "out of memory");
		return -1;
	}
	g->n_values++;
	if (!map_put(b, v)) {
		status_fail(PRESSO_E_NOMEM, "out of memory");
		return -1;
	}
	return v;
}

/* A fresh, unnamed-in-the-file value for folded weights ("<base>#<tag>"). */
static int add_derived_value(struct builder *b, const char *base, const char *tag)
{
	char name[512];
	snprintf(name, sizeof name, "%s#%s", base, tag);
	for (int k = 1; map_find(b, name) >= 0; k++)
		snprintf(name, sizeof name, "%s#%s%d", base, tag, k);
	return add_value(b, name);
}

/* --- tensors -------------------------------------------------------------- */

static const char *dtype_name(int32_t t)
{
	static const char *const names[] = {
		"undefined", "float", "uint8", "int8", "uint16", "int16", "int32", "int64",
		"string", "bool", "float16", "double", "uint32", "uint64", "complex64",
		"complex128", "bfloat16"};
	if (t >= 0 && t < (int32_t)(sizeof names / sizeof names[0]))
		return names[t];
	return "unknown";
}

static enum presso_status read_external(const Onnx__TensorProto *t, const char *base_dir,
					size_t want_bytes, uint8_t **out)
{
	const char *location = NULL;
	long long offset = 0, length = -1;
	for (size_t i = 0; i < t->n_external_data; i++) {
		const char *k = t->external_data[i]->key, *v = t->external_data[i]->value;
		if (!k || !v)
			continue;
		if (strcmp(k, "location") == 0)
			location = v;
		else if (strcmp(k, "offset") == 0)
			offset = strtoll(v, NULL, 10);
		else if (strcmp(k, "length") == 0)
			length = strtoll(v, NULL, 10);
	}
	if (!location || !*location)
		return status_fail(PRESSO_E_FORMAT, "tensor '%s': external data without a location",
				   t->name);
	if (location[0] == '/' || strstr(location, ".."))
		return status_fail(PRESSO_E_FORMAT,
				   "tensor '%s': external data location '%s' must be a relative path inside the model's folder",
				   t->name, location);
	if (offset < 0 || (length >= 0 && (size_t)length != want_bytes))
		return status_fail(PRESSO_E_FORMAT,
				   "tensor '%s': external data length %lld, expected %zu bytes",
				   t->name, length, want_bytes);
	char path[PATH_MAX];
	snprintf(path, sizeof path, "%s/%s", base_dir ? base_dir : ".", location);
	FILE *f;
	size_t file_bytes;
	enum presso_status s = file_open_regular(path, "an external data file", &f, &file_bytes);
	if (s != PRESSO_OK)
		return status_wrap(s, "tensor '%s': external data", t->name);
	uint8_t *buf = malloc(want_bytes ? want_bytes : 1);
	if (!buf) {
		fclose(f);
		return status_fail(PRESSO_E_NOMEM, "tensor '%s': out of memory for %zu bytes",
				   t->name, want_bytes);
	}
	bool ok = (unsigned long long)offset <= file_bytes &&
		  want_bytes <= file_bytes - (size_t)offset &&
		  fseek(f, (long)offset, SEEK_SET) == 0 && fread(buf, 1, want_bytes, f) == want_bytes;
	fclose(f);
	if (!ok) {
		free(buf);
		return status_fail(PRESSO_E_FORMAT,
				   "tensor '%s': external data file '%s' is shorter than offset %lld + %zu bytes",
				   t->name, path, offset, want_bytes);
	}
	*out = buf;
	return PRESSO_OK;
}

/* Converts a TensorProto into a constant value (float32, or int64 for integer
 * types). v->name must already be set. */
static enum presso_status tensor_to_value(const Onnx__TensorProto *t, const char *base_dir,
					  struct value *v)
{
	const char *name = t->name ? t->name : "";
	if (t->n_dims > GRAPH_MAX_DIMS)
		return status_fail(PRESSO_E_UNSUPPORTED, "tensor '%s': rank %zu exceeds %d", name,
				   t->n_dims, GRAPH_MAX_DIMS);
	int64_t count;
	v->shape.n_dims = (int)t->n_dims;
	for (size_t i = 0; i < t->n_dims; i++) {
		if (t->dims[i] < 0)
			return status_fail(PRESSO_E_FORMAT, "tensor '%s': negative dimension", name);
		v->shape.dims[i] = t->dims[i];
	}
	if (!shape_numel_checked(&v->shape, &count))
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "tensor '%s': more than %lld elements (the most a tensor may have)",
				   name, (long long)GRAPH_MAX_ELEMS);
	int32_t dt = t->has_data_type ? t->data_type : 0;
	size_t elem;
	switch (dt) {
	case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT32:
	case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32:
		elem = 4;
		break;
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
	case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE:
		elem = 8;
		break;
	case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
	case ONNX__TENSOR_PROTO__DATA_TYPE__UINT8:
	case ONNX__TENSOR_PROTO__DATA_TYPE__BOOL:
		elem = 1;
		break;
	default:
		return status_fail(PRESSO_E_UNSUPPORTED, "tensor '%s': data type %s is not supported",
				   name, dtype_name(dt));
	}
	bool is_float = dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ||
			dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
	size_t want = (size_t)count * elem;
	const uint8_t *raw = NULL;
	uint8_t *ext = NULL;
	if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
		enum presso_status s = read_external(t, base_dir, want, &ext);
		if (s != PRESSO_OK)
			return s;
		raw = ext;
	} else if (t->has_raw_data) {
		if (t->raw_data.len != want) {
			return status_fail(PRESSO_E_FORMAT,
					   "tensor '%s': raw_data holds %zu bytes, its shape needs %zu",
					   name, t->raw_data.len, want);
		}
		raw = t->raw_data.data;
	}
	size_t n = (size_t)count;
	float *f = NULL;
	int64_t *l = NULL;
	if (is_float)
		f = malloc(sizeof(float) * (n ? n : 1));
	else
		l = malloc(sizeof(int64_t) * (n ? n : 1));
	if (!f && !l) {
		free(ext);
		return status_fail(PRESSO_E_NOMEM, "tensor '%s': out of memory", name);
	}
	size_t have;
	if (raw) {
		have = n;
		for (size_t i = 0; i < n; i++) {
			const uint8_t *p = raw + i * elem;
			switch (dt) {
			case ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT:
				memcpy(&f[i], p, 4);
				break;
			case ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE: {
				double d;
				memcpy(&d, p, 8);
				f[i] = (float)d;
				break;
			}
			case ONNX__TENSOR_PROTO__DATA_TYPE__INT64:
				memcpy(&l[i], p, 8);
				break;
			case ONNX__TENSOR_PROTO__DATA_TYPE__INT32: {
				int32_t x;
				memcpy(&x, p, 4);
				l[i] = x;
				break;
			}
			case ONNX__TENSOR_PROTO__DATA_TYPE__UINT32: {
				uint32_t x;
				memcpy(&x, p, 4);
				l[i] = x;
				break;
			}
			case ONNX__TENSOR_PROTO__DATA_TYPE__INT8:
				l[i] = (int8_t)p[0];
				break;
			default:
				l[i] = p[0];
				break;
			}
		}
	} else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT) {
		have = t->n_float_data;
		for (size_t i = 0; i < n && i < have; i++)
			f[i] = t->float_data[i];
	} else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE) {
		have = t->n_double_data;
		for (size_t i = 0; i < n && i < have; i++)
			f[i] = (float)t->double_data[i];
	} else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT64) {
		have = t->n_int64_data;
		for (size_t i = 0; i < n && i < have; i++)
			l[i] = t->int64_data[i];
	} else if (dt == ONNX__TENSOR_PROTO__DATA_TYPE__UINT32) {
		have = t->n_uint64_data;
		for (size_t i = 0; i < n && i < have; i++)
			l[i] = (int64_t)t->uint64_data[i];
	} else {
		have = t->n_int32_data;
		for (size_t i = 0; i < n && i < have; i++)
			l[i] = dt == ONNX__TENSOR_PROTO__DATA_TYPE__INT8 ? (int8_t)t->int32_data[i]
									: t->int32_data[i];
	}
	free(ext);
	if (have != n) {
		free(f);
		free(l);
		return status_fail(PRESSO_E_FORMAT, "tensor '%s': holds %zu values, its shape needs %zu",
				   name, have, n);
	}
	v->data = f;
	v->idata = l;
	v->dtype = is_float ? DTYPE_F32 : DTYPE_I64;
	return PRESSO_OK;
}

/* --- attributes ----------------------------------------------------------- */

static const Onnx__AttributeProto *find_attr(const Onnx__NodeProto *np, const char *name)
{
	for (size_t i = 0; i < np->n_attribute; i++)
		if (np->attribute[i]->name && strcmp(np->attribute[i]->name, name) == 0)
			return np->attribute[i];
	return NULL;
}

/* Fails on the first attribute of np not in allowed (NULL-terminated). */
static enum presso_status check_attrs(const struct node *n, const Onnx__NodeProto *np,
				      const char *const *allowed)
{
	for (size_t i = 0; i < np->n_attribute; i++) {
		const char *a = np->attribute[i]->name ? np->attribute[i]->name : "";
		bool ok = false;
		for (const char *const *k = allowed; *k && !ok; k++)
			ok = strcmp(*k, a) == 0;
		if (!ok)
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': %s attribute '%s' is not supported", n->name,
					   op_name(n->op), a);
	}
	return PRESSO_OK;
}

static int64_t attr_int(const Onnx__NodeProto *np, const char *name, int64_t dflt)
{
	const Onnx__AttributeProto *a = find_attr(np, name);
	return a && a->has_i ? a->i : dflt;
}

static float attr_float(const Onnx__NodeProto *np, const char *name, float dflt)
{
	const Onnx__AttributeProto *a = find_attr(np, name);
	return a && a->has_f ? a->f : dflt;
}

/* Reads an ints attribute of exactly `want` entries (or any count <= max when
 * want < 0) into out; returns the count, or -1 if absent, -2 on a bad count. */
static int attr_ints(const Onnx__NodeProto *np, const char *name, int want, int max,
		     int64_t *out)
{
	const Onnx__AttributeProto *a = find_attr(np, name);
	if (!a)
		return -1;
	if ((want >= 0 && a->n_ints != (size_t)want) || a->n_ints > (size_t)max)
		return -2;
	for (size_t i = 0; i < a->n_ints; i++)
		out[i] = a->ints[i];
	return (int)a->n_ints;
}

static enum presso_status bad_attr(const struct node *n, const char *attr, const char *why)
{
	return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': %s attribute %s %s", n->name,
			   op_name(n->op), attr, why);
}

/* kernel_shape, strides, pads, dilations, auto_pad of a 2-D Conv or pool (a
 * 1-D one arrives here as 2-D, import_lifted). */
static enum presso_status read_window(struct node *n, const Onnx__NodeProto *np,
				      bool need_kernel)
{
	int64_t v[4];
	struct node_attrs *a = &n->a;
	int k = attr_ints(np, "kernel_shape", -1, 4, v);
	if (k == -1 && need_kernel)
		return status_fail(PRESSO_E_FORMAT, "node '%s': %s needs kernel_shape", n->name,
				   op_name(n->op));
	if (k >= 0 && k != 2)
		return bad_attr(n, "kernel_shape", "must have 1 or 2 entries (only 1-D and 2-D windows are supported)");
	if (k == -2)
		return bad_attr(n, "kernel_shape", "has too many entries");
	a->kernel[0] = k == 2 ? (int)v[0] : 0;
	a->kernel[1] = k == 2 ? (int)v[1] : 0;
	if (k == 2 && (v[0] < 1 || v[1] < 1 || v[0] > MAX_WINDOW || v[1] > MAX_WINDOW))
		return bad_attr(n, "kernel_shape", "must be positive");
	a->strides[0] = a->strides[1] = 1;
	int s = attr_ints(np, "strides", 2, 2, v);
	if (s == -2)
		return bad_attr(n, "strides", "must have 2 entries (only 2-D is supported)");
	if (s == 2) {
		if (v[0] < 1 || v[1] < 1 || v[0] > MAX_WINDOW || v[1] > MAX_WINDOW)
			return bad_attr(n, "strides", "must be positive");
		a->strides[0] = (int)v[0];
		a->strides[1] = (int)v[1];
	}
	a->dilations[0] = a->dilations[1] = 1;
	int d = attr_ints(np, "dilations", 2, 2, v);
	if (d == -2)
		return bad_attr(n, "dilations", "must have 2 entries (only 2-D is supported)");
	if (d == 2) {
		if (v[0] < 1 || v[1] < 1 || v[0] > MAX_WINDOW || v[1] > MAX_WINDOW)
			return bad_attr(n, "dilations", "must be positive");
		a->dilations[0] = (int)v[0];
		a->dilations[1] = (int)v[1];
	}
	memset(a->pads, 0, sizeof a->pads);
	int p = attr_ints(np, "pads", 4, 4, v);
	if (p == -2)
		return bad_attr(n, "pads", "must have 4 entries (only 2-D is supported)");
	if (p == 4) {
		/* ONNX order: x1_begin, x2_begin, x1_end, x2_end = top, left, bottom, right */
		for (int i = 0; i < 4; i++) {
			if (v[i] < 0 || v[i] > MAX_WINDOW)
				return status_fail(PRESSO_E_UNSUPPORTED,
						   "node '%s': %s attribute pads must be between 0 and %d",
						   n->name, op_name(n->op), MAX_WINDOW);
			a->pads[i] = (int)v[i];
		}
	}
	a->auto_pad = 0;
	const Onnx__AttributeProto *ap = find_attr(np, "auto_pad");
	if (ap && ap->has_s) {
		static const char *const modes[] = {"NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"};
		int mode = -1;
		for (int i = 0; i < 4; i++)
			if (ap->s.len == strlen(modes[i]) && memcmp(ap->s.data, modes[i], ap->s.len) == 0)
				mode = i;
		if (mode < 0)
			return bad_attr(n, "auto_pad", "must be NOTSET, SAME_UPPER, SAME_LOWER or VALID");
		a->auto_pad = mode;
		if (mode != 0 && p == 4)
			return status_fail(PRESSO_E_FORMAT, "node '%s': %s has both pads and auto_pad",
					   n->name, op_name(n->op));
	}
	return PRESSO_OK;
}

/* --- nodes ---------------------------------------------------------------- */

struct op_name_map {
	const char *onnx;
	enum op_type op;
};

static const struct op_name_map op_names[] = {
	{"Conv", OP_CONV},
	{"Gemm", OP_GEMM},
	{"MatMul", OP_MATMUL},
	{"Relu", OP_RELU},
	{"Clip", OP_CLIP},
	{"BatchNormalization", OP_BATCHNORM},
	{"MaxPool", OP_MAXPOOL},
	{"AveragePool", OP_AVGPOOL},
	{"GlobalAveragePool", OP_GLOBALAVGPOOL},
	{"Add", OP_ADD},
	{"Concat", OP_CONCAT},
	{"Flatten", OP_FLATTEN},
	{"Reshape", OP_RESHAPE},
	{"Softmax", OP_SOFTMAX},
	{"LogSoftmax", OP_LOGSOFTMAX},
	{"Identity", OP_IDENTITY},
	{"Dropout", OP_IDENTITY},
	{"Transpose", OP_TRANSPOSE},
	{"Squeeze", OP_SQUEEZE},
	{"Unsqueeze", OP_UNSQUEEZE},
	{"Sigmoid", OP_SIGMOID},
	{"Tanh", OP_TANH},
	{"HardSigmoid", OP_HARDSIGMOID},
	{"HardSwish", OP_HARDSWISH},
	{"LeakyRelu", OP_LEAKYRELU},
	{"PRelu", OP_PRELU},
	{"Mul", OP_MUL},
	{"Sub", OP_SUB},
	{"Div", OP_DIV},
	{"Pow", OP_POW},
	{"Sqrt", OP_SQRT},
	{"Erf", OP_ERF},
	{"Sum", OP_SUM},
	{"Pad", OP_PAD},
	{"ReduceMean", OP_REDUCEMEAN},
	{"ReduceSum", OP_REDUCESUM},
	{"ReduceMax", OP_REDUCEMAX},
	{"ReduceMin", OP_REDUCEMIN},
	{"ReduceL2", OP_REDUCEL2},
	{"ReduceSumSquare", OP_REDUCESUMSQUARE},
	{"Max", OP_MAX},
	{"Min", OP_MIN},
	{"Log", OP_LOG},
	{"LayerNormalization", OP_LAYERNORM},
	{"LRN", OP_LRN},
	{"Exp", OP_EXP},
	{"Neg", OP_NEG},
	{"Reciprocal", OP_RECIPROCAL},
	{"Abs", OP_ABS},
	{"Elu", OP_ELU},
	{"Selu", OP_SELU},
	{"Celu", OP_CELU},
	{"Softplus", OP_SOFTPLUS},
	{"Softsign", OP_SOFTSIGN},
	{"ThresholdedRelu", OP_THRESHOLDEDRELU},
	{"ConvTranspose", OP_CONVTRANSPOSE},
	{"Resize", OP_RESIZE},
	{"Cast", OP_IDENTITY}, /* to float; on constants, folded to any type */
};

/* Ops that become constants at load (their inputs are constants or static
 * shapes): evaluated by fold_only_node(), never graph nodes; but Slice, which
 * of a computed tensor becomes an OP_SLICE there. */
static const char *const fold_only_ops[] = {"Shape", "Size", "ConstantOfShape", "Gather",
					    "Slice", "Equal", "Where", "Expand", "EyeLike"};

static bool is_fold_only(const char *op)
{
	for (size_t i = 0; i < sizeof fold_only_ops / sizeof fold_only_ops[0]; i++)
		if (strcmp(fold_only_ops[i], op) == 0)
			return true;
	return false;
}

/* The ONNX ops presso imports: op_names[] above, the fold-only ones, Slice,
 * Split, Constant, InstanceNormalization (import_instancenorm),
 * QuantizeLinear and DequantizeLinear (import_qdq), and LSTM, GRU and RNN
 * (import_rnn). */
static bool op_is_known(const char *op)
{
	if (strcmp(op, "Constant") == 0 || strcmp(op, "Split") == 0 ||
	    strcmp(op, "InstanceNormalization") == 0 || strcmp(op, "QuantizeLinear") == 0 ||
	    strcmp(op, "DequantizeLinear") == 0 || strcmp(op, "LSTM") == 0 ||
	    strcmp(op, "GRU") == 0 || strcmp(op, "RNN") == 0 || is_fold_only(op))
		return true;
	for (size_t i = 0; i < sizeof op_names / sizeof op_names[0]; i++)
		if (strcmp(op_names[i].onnx, op) == 0)
			return true;
	return false;
}

/* How messages name an ONNX node: by its name, or, when it has none, by its
 * first output (the op is said beside). */
static void describe_node(const Onnx__NodeProto *np, size_t index, char *buf, size_t buf_bytes)
{
	if (np->name && *np->name)
		snprintf(buf, buf_bytes, "node '%s'", np->name);
	else if (np->n_output && np->output[0] && *np->output[0])
		snprintf(buf, buf_bytes, "unnamed node with output '%s'", np->output[0]);
	else
		snprintf(buf, buf_bytes, "unnamed node %zu (no output)", index);
}

static bool node_is_foreign(const Onnx__NodeProto *np)
{
	return np->domain && *np->domain && strcmp(np->domain, "ai.onnx") != 0;
}

/* Refuses a model with any node whose op presso lacks, listing every such
 * node once, in file order, with its op (and domain when it is not ai.onnx):
 * one unsupported op should not hide the next. One node keeps the one-line
 * form "node 'x': op Y is not supported"; several give a count and the
 * distinct ops on a first line, then a line per node. */
static enum presso_status check_ops(const Onnx__GraphProto *gp)
{
	/* the message, built here, then handed to status_fail (which holds 8 KiB) */
	char msg[8000] = "", ops[512] = "", who[300];
	size_t used = 0, n_bad = 0, n_listed = 0, first = 0;
	for (size_t i = 0; i < gp->n_node; i++) {
		const Onnx__NodeProto *np = gp->node[i];
		const char *op = np->op_type ? np->op_type : "";
		if (!node_is_foreign(np) && op_is_known(op))
			continue;
		if (n_bad++ == 0)
			first = i;
		/* the distinct ops, in order of first use */
		bool seen = false;
		for (size_t j = 0; j < i && !seen; j++) {
			const Onnx__NodeProto *q = gp->node[j];
			const char *qop = q->op_type ? q->op_type : "";
			seen = strcmp(qop, op) == 0 && (node_is_foreign(q) || !op_is_known(qop));
		}
		size_t ol = strlen(ops);
		if (!seen && ol + strlen(op) + 3 < sizeof ops)
			snprintf(ops + ol, sizeof ops - ol, "%s%s", ol ? ", " : "", op);
		describe_node(np, i, who, sizeof who);
		char line[600];
		if (node_is_foreign(np))
			snprintf(line, sizeof line, "\n  %s: %s (domain '%s')", who, op, np->domain);
		else
			snprintf(line, sizeof line, "\n  %s: %s", who, op);
		size_t ll = strlen(line);
		if (used + ll + 40 < sizeof msg) { /* 40: room for the "... and N more" line */
			memcpy(msg + used, line, ll + 1);
			used += ll;
			n_listed++;
		}
	}
	if (n_bad == 0)
		return PRESSO_OK;
	const Onnx__NodeProto *np = gp->node[first];
	describe_node(np, first, who, sizeof who);
	if (n_bad == 1 && node_is_foreign(np))
		return status_fail(PRESSO_E_UNSUPPORTED, "%s: op %s of domain '%s' is not supported",
				   who, np->op_type ? np->op_type : "", np->domain);
	if (n_bad == 1)
		return status_fail(PRESSO_E_UNSUPPORTED, "%s: op %s is not supported", who,
				   np->op_type ? np->op_type : "");
	if (n_listed < n_bad)
		snprintf(msg + used, sizeof msg - used, "\n  ... and %zu more", n_bad - n_listed);
	return status_fail(PRESSO_E_UNSUPPORTED, "%zu nodes use ops presso does not support (%s):%s",
			   n_bad, ops, msg);
}

static const struct value *input_value(const struct builder *b, const struct node *n, int i)
{
	if (i >= n->n_inputs || n->inputs[i] < 0)
		return NULL;
	return &b->g->values[n->inputs[i]];
}

/* A constant input read as integers (axes, shape); -1 if absent. */
static enum presso_status const_ints_input(struct builder *b, struct node *n, int i,
					   const char *what, int *count)
{
	const struct value *v = input_value(b, n, i);
	*count = -1;
	if (!v)
		return PRESSO_OK;
	if (!v->idata)
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "node '%s': %s input '%s' (%s) must be a constant integer tensor",
				   n->name, op_name(n->op), v->name, what);
	int64_t len = shape_numel(&v->shape);
	if (len > GRAPH_MAX_DIMS)
		return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': %s %s has %lld entries (at most %d)",
				   n->name, op_name(n->op), what, (long long)len, GRAPH_MAX_DIMS);
	int n_sym = 0, n_infer = 0;
	for (int k = 0; k < len; k++) {
		n->a.ints[k] = v->idata[k];
		n_sym += is_sym(v->idata[k]);
		n_infer += v->idata[k] == -1;
	}
	if (n_sym && n->op == OP_RESHAPE && !n->a.allowzero) {
		/* an entry that is the input's own dimension at that place (x.view(
		 * x.size(0), -1)) copies it: 0 */
		int64_t xd[GRAPH_MAX_DIMS];
		int xr = 0;
		enum presso_status s = prefix_shape(b, n->inputs[0], xd, &xr);
		if (s != PRESSO_OK)
			return s;
		for (int k = 0; k < len && k < xr; k++)
			if (is_sym(n->a.ints[k]) && n->a.ints[k] == xd[k]) {
				n->a.ints[k] = 0;
				n_sym--;
			}
	}
	/* Resize sizes whose first entry is the input's own batch (as
	 * F.interpolate(x, size=y.shape[-2:]) exports: Shape(x)[:2] concatenated
	 * with y's): read_resize keeps that dimension */
	if (n_sym && n->op == OP_RESIZE && len > 0 && is_sym(n->a.ints[0])) {
		int64_t xd[GRAPH_MAX_DIMS];
		int xr = 0;
		enum presso_status s = prefix_shape(b, n->inputs[0], xd, &xr);
		if (s != PRESSO_OK)
			return s;
		if (xr > 0 && n->a.ints[0] == xd[0])
			n_sym--;
	}
	/* one other such entry and no -1: it is what the others leave, a -1 */
	if (n_sym == 1 && n_infer == 0 && n->op == OP_RESHAPE) {
		for (int k = 0; k < len; k++)
			if (is_sym(n->a.ints[k]))
				n->a.ints[k] = -1;
		n_sym = 0;
	}
	if (n_sym)
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "node '%s': %s %s '%s' depends on the batch size (%s)", n->name,
				   op_name(n->op), what, v->name,
				   n->op == OP_RESHAPE ? "in more than one place, or beside a -1"
						       : "it comes from the Shape of a batched tensor");
	n->a.n_ints = (int)len;
	*count = (int)len;
	return PRESSO_OK;
}

static enum presso_status const_scalar_input(const struct builder *b, struct node *n, int i,
					     float *out)
{
	const struct value *v = input_value(b, n, i);
	if (!v)
		return PRESSO_OK;
	if (!value_is_const(v) || shape_numel(&v->shape) != 1)
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "node '%s': Clip bound '%s' must be a constant scalar", n->name,
				   v->name);
	*out = v->data ? v->data[0] : (float)v->idata[0];
	return PRESSO_OK;
}

/* BatchNormalization divides by sqrt(var + epsilon), in double both when it is
 * folded and when it runs: a constant variance must keep that positive. */
static enum presso_status check_variance(const struct builder *b, const struct node *n)
{
	const struct value *var = input_value(b, n, 4);
	if (!var || !var->data)
		return PRESSO_OK;
	int64_t count = shape_numel(&var->shape);
	for (int64_t c = 0; c < count; c++) {
		double v = (double)var->data[c] + (double)n->a.epsilon;
		if (!(v > 0))
			return status_fail(PRESSO_E_FORMAT,
					   "node '%s': BatchNormalization variance + epsilon is %g for channel %lld (variance %g, epsilon %g); it must be positive",
					   n->name, v, (long long)c, (double)var->data[c],
					   (double)n->a.epsilon);
	}
	return PRESSO_OK;
}

/* Pad, constant mode: pads from the attribute (opset < 11) or input 1, the
 * value from the attribute or input 2 (a constant scalar); pads become
 * n->a.ints, the value n->a.pad_value, and the node keeps one input. */
static enum presso_status read_pad(struct builder *b, struct node *n, const Onnx__NodeProto *np)
{
	static const char *const ok[] = {"mode", "pads", "value", NULL};
	struct node_attrs *a = &n->a;
	enum presso_status s;
	if ((s = check_attrs(n, np, ok)))
		return s;
	const Onnx__AttributeProto *mode = find_attr(np, "mode");
	if (mode && mode->has_s && !(mode->s.len == 8 && memcmp(mode->s.data, "constant", 8) == 0))
		return bad_attr(n, "mode", "other than constant is not supported");
	if (n->n_inputs > 3 && n->inputs[3] >= 0)
		return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': Pad with an axes input is not supported",
				   n->name);
	int cnt;
	if (n->n_inputs >= 2) {
		if ((s = const_ints_input(b, n, 1, "pads", &cnt)))
			return s;
	} else {
		cnt = attr_ints(np, "pads", -1, GRAPH_MAX_DIMS, a->ints);
		if (cnt == -2)
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': Pad of a tensor of rank above %d is not supported",
					   n->name, GRAPH_MAX_DIMS / 2);
		a->n_ints = cnt > 0 ? cnt : 0;
	}
	if (cnt < 0)
		return status_fail(PRESSO_E_FORMAT, "node '%s': Pad needs pads", n->name);
	for (int i = 0; i < a->n_ints; i++)
		if (a->ints[i] < 0 || a->ints[i] > GRAPH_MAX_ELEMS)
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': Pad pads entry %lld is not supported (negative pads crop; only 0..%lld)",
					   n->name, (long long)a->ints[i], (long long)GRAPH_MAX_ELEMS);
	a->pad_value = attr_float(np, "value", 0.0f);
	const struct value *v = input_value(b, n, 2);
	if (v) {
		if (!value_is_const(v) || shape_numel(&v->shape) != 1)
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': Pad constant_value '%s' must be a constant scalar",
					   n->name, v->name);
		a->pad_value = v->data ? v->data[0] : (float)v->idata[0];
	}
	n->n_inputs = 1;
	return PRESSO_OK;
}

/* The index of string attribute `name`'s value in names (NULL-terminated), dflt
 * when absent, -1 when it is none of them. */
static int attr_choice(const Onnx__NodeProto *np, const char *name, const char *const *names,
		       int dflt)
{
	const Onnx__AttributeProto *at = find_attr(np, name);
	if (!at || !at->has_s)
		return dflt;
	for (int i = 0; names[i]; i++)
		if (at->s.len == strlen(names[i]) && memcmp(at->s.data, names[i], at->s.len) == 0)
			return i;
	return -1;
}

/* Resize (opset >= 11), mode nearest or linear: X, roi, scales, sizes. The scales or
 * sizes must be constants; the batch dimension is never resized. Kept as
 * a->ints = sizes (-1 where the size follows from the scale) and a->scales =
 * scales (0 where the scale follows from the sizes), one entry per dimension. */
static enum presso_status read_resize(struct builder *b, struct node *n, const Onnx__NodeProto *np)
{
	static const char *const ok[] = {"mode", "coordinate_transformation_mode", "nearest_mode",
					 "cubic_coeff_a", "exclude_outside", "extrapolation_value",
					 "antialias", "keep_aspect_ratio_policy", NULL};
	static const char *const modes[] = {"nearest", "linear", "cubic", NULL};
	/* in the order of enum resize_coord, then the ones presso does not do */
	static const char *const coords[] = {"half_pixel", "pytorch_half_pixel", "align_corners",
					     "asymmetric", "tf_half_pixel_for_nearest",
					     "tf_crop_and_resize", "half_pixel_symmetric", NULL};
	static const char *const rounds[] = {"round_prefer_floor", "round_prefer_ceil", "floor",
					     "ceil", NULL};
	static const char *const policies[] = {"stretch", NULL};
	struct node_attrs *a = &n->a;
	enum presso_status s;
	if ((s = check_attrs(n, np, ok)))
		return s;
	if (b->opset < 11)
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "node '%s': Resize of opset %lld is not supported (re-export the model with opset 11 or later)",
				   n->name, (long long)b->opset);
	int mode = attr_choice(np, "mode", modes, 0);
	if (mode != 0 && mode != 1)
		return bad_attr(n, "mode", "cubic is not supported (nearest and linear are)");
	int coord = attr_choice(np, "coordinate_transformation_mode", coords, RESIZE_HALF_PIXEL);
	if (coord < 0 || coord >= RESIZE_COORD_COUNT)
		return bad_attr(n, "coordinate_transformation_mode",
				"is not supported (half_pixel, pytorch_half_pixel, align_corners, asymmetric and tf_half_pixel_for_nearest are)");
	if (mode == 1 && coord == RESIZE_TF_HALF_PIXEL_FOR_NN)
		return bad_attr(n, "coordinate_transformation_mode",
				"tf_half_pixel_for_nearest is for mode nearest only");
	a->resize_linear = mode == 1;
	int round = attr_choice(np, "nearest_mode", rounds, RESIZE_ROUND_PREFER_FLOOR);
	if (round < 0)
		return bad_attr(n, "nearest_mode", "is not one of round_prefer_floor, round_prefer_ceil, floor, ceil");
	if (attr_int(np, "antialias", 0) != 0)
		return bad_attr(n, "antialias", "other than 0 is not supported");
	if (attr_choice(np, "keep_aspect_ratio_policy", policies, 0) != 0)
		return bad_attr(n, "keep_aspect_ratio_policy", "other than stretch is not supported");
	a->resize_coord = (uint8_t)coord;
	a->resize_round = (uint8_t)round;

	const struct value *scales = input_value(b, n, 2), *sizes = input_value(b, n, 3);
	/* an empty constant stands for an absent input */
	if (scales && value_is_const(scales) && shape_numel(&scales->shape) == 0)
		scales = NULL;
	if (sizes && value_is_const(sizes) && shape_numel(&sizes->shape) == 0)
		sizes = NULL;
	if (!scales == !sizes)
		return status_fail(PRESSO_E_FORMAT, "node '%s': Resize needs exactly one of scales and sizes",
				   n->name);
	if (sizes) {
		int cnt;
		if ((s = const_ints_input(b, n, 3, "sizes", &cnt)))
			return s;
		if (cnt < 1)
			return status_fail(PRESSO_E_FORMAT, "node '%s': Resize sizes is empty", n->name);
		a->n_ints = cnt;
		for (int d = 0; d < cnt; d++) {
			a->scales[d] = 0.0f;
			if (d == 0 && is_sym(a->ints[d])) {
				a->ints[d] = -1;
				a->scales[d] = 1.0f;
			} else if (a->ints[d] < 0 || a->ints[d] > GRAPH_MAX_ELEMS) {
				return status_fail(PRESSO_E_UNSUPPORTED,
						   "node '%s': Resize sizes entry %lld is not supported",
						   n->name, (long long)a->ints[d]);
			}
		}
	} else {
		if (!scales->data)
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': Resize scales '%s' must be a constant float tensor",
					   n->name, scales->name);
		int64_t cnt = shape_numel(&scales->shape);
		if (cnt > GRAPH_MAX_DIMS)
			return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': Resize scales has %lld entries (at most %d)",
					   n->name, (long long)cnt, GRAPH_MAX_DIMS);
		a->n_ints = (int)cnt;
		for (int d = 0; d < cnt; d++) {
			float f = scales->data[d];
			if (!(f > 0.0f) || !(f <= (float)GRAPH_MAX_ELEMS))
				return status_fail(PRESSO_E_UNSUPPORTED,
						   "node '%s': Resize scale %g is not supported (must be positive)",
						   n->name, (double)f);
			a->scales[d] = f;
			a->ints[d] = -1;
		}
	}
	if (!(a->ints[0] < 0 ? a->scales[0] == 1.0f : true))
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "node '%s': Resize of the batch dimension is not supported (its scale must be 1)",
				   n->name);
	n->n_inputs = 1;
	return PRESSO_OK;
}

/* ReduceMean (and Sum, Max, Min, L2): axes from the attribute (opset < 18;
 * ReduceSum < 13) or input 1, keepdims; no
 * axes reduce everything, or nothing with noop_with_empty_axes (the node is
 * then an Identity). */
static enum presso_status read_reduce(struct builder *b, struct node *n, const Onnx__NodeProto *np)
{
	static const char *const ok[] = {"axes", "keepdims", "noop_with_empty_axes", NULL};
	struct node_attrs *a = &n->a;
	enum presso_status s;
	if ((s = check_attrs(n, np, ok)))
		return s;
	int cnt = -1;
	if (n->n_inputs >= 2) {
		if ((s = const_ints_input(b, n, 1, "axes", &cnt)))
			return s;
	} else {
		cnt = attr_ints(np, "axes", -1, GRAPH_MAX_DIMS, a->ints);
		if (cnt == -2)
			return bad_attr(n, "axes", "has too many entries");
		a->n_ints = cnt > 0 ? cnt : 0;
	}
	for (int i = 0; i < a->n_ints; i++)
		if (a->ints[i] < -GRAPH_MAX_DIMS || a->ints[i] >= GRAPH_MAX_DIMS)
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': %s axes entry %lld is out of range (a rank is at most %d)",
					   n->name, op_name(n->op), (long long)a->ints[i], GRAPH_MAX_DIMS);
	a->keepdims = attr_int(np, "keepdims", 1) != 0;
	n->n_inputs = 1;
	if (a->n_ints == 0 && attr_int(np, "noop_with_empty_axes", 0) != 0)
		n->op = OP_IDENTITY;
	return PRESSO_OK;
}

/* Pow: an integer constant exponent (exporters write Pow(x, 2) with an int64
 * 2 at times) becomes a float constant. */
static enum presso_status read_pow(struct builder *b, struct node *n, const Onnx__NodeProto *np)
{
	static const char *const ok[] = {NULL};
	enum presso_status s;
	if ((s = check_attrs(n, np, ok)))
		return s;
	const struct value *e = input_value(b, n, 1);
	if (!e || !e->idata)
		return PRESSO_OK;
	int64_t count = shape_numel(&e->shape);
	if ((s = fold_budget(b, n->name, "Pow", count, sizeof(float))))
		return s;
	float *f = malloc(sizeof(float) * (size_t)(count ? count : 1));
	if (!f)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	for (int64_t i = 0; i < count; i++)
		f[i] = (float)e->idata[i];
	struct shape sh = e->shape;
	int v = add_derived_value(b, n->name, "exponent");
	if (v < 0) {
		free(f);
		return PRESSO_E_NOMEM;
	}
	b->g->values[v].data = f;
	b->g->values[v].shape = sh;
	n->inputs[1] = v;
	return PRESSO_OK;
}

/* Reads and checks the attributes (and attribute-like constant inputs) of n. */
static enum presso_status read_attrs(struct builder *b, struct node *n,
				     const Onnx__NodeProto *np, const char *onnx_op)
{
	struct node_attrs *a = &n->a;
	enum presso_status s = PRESSO_OK;
	a->group = 1;
	a->alpha = a->beta = 1.0f;
	a->clip_min = -INFINITY;
	a->clip_max = INFINITY;
	a->epsilon = 1e-5f;
	a->axis = 1;
	if (op_is_reduce(n->op))
		return read_reduce(b, n, np);
	switch (n->op) {
	case OP_CONV: {
		static const char *const ok[] = {"kernel_shape", "strides", "pads", "dilations",
						 "group", "auto_pad", NULL};
		if ((s = check_attrs(n, np, ok)) || (s = read_window(n, np, false)))
			return s;
		int64_t g = attr_int(np, "group", 1);
		if (g < 1 || g > INT32_MAX)
			return bad_attr(n, "group", "must be positive");
		a->group = (int)g;
		break;
	}
	case OP_CONVTRANSPOSE: {
		static const char *const ok[] = {"kernel_shape", "strides", "pads", "dilations",
						 "group", "auto_pad", "output_padding",
						 "output_shape", NULL};
		if ((s = check_attrs(n, np, ok)) || (s = read_window(n, np, false)))
			return s;
		if (a->auto_pad == 3)
			a->auto_pad = 0; /* VALID: no padding */
		/* output_shape (its spatial entries), or auto_pad SAME, set the
		 * pads once the input's size is known (infer_and_resolve) */
		int64_t os[4];
		int n_os = attr_ints(np, "output_shape", -1, 4, os);
		if (n_os == 2 || n_os == 4) {
			a->n_ints = 2;
			a->ints[0] = os[n_os - 2];
			a->ints[1] = os[n_os - 1];
			if (a->ints[0] < 1 || a->ints[1] < 1 || a->ints[0] > GRAPH_MAX_ELEMS ||
			    a->ints[1] > GRAPH_MAX_ELEMS)
				return bad_attr(n, "output_shape", "must be positive");
		} else if (n_os != -1) {
			return bad_attr(n, "output_shape", "must give the 2 spatial sizes (or all 4)");
		}
		int64_t g = attr_int(np, "group", 1), op[2] = {0, 0};
		if (g < 1 || g > INT32_MAX)
			return bad_attr(n, "group", "must be positive");
		a->group = (int)g;
		int cnt = attr_ints(np, "output_padding", 2, 2, op);
		if (cnt == -2)
			return bad_attr(n, "output_padding", "must have 2 entries (only 1-D and 2-D are supported)");
		for (int d = 0; d < 2; d++) {
			if (op[d] < 0 || op[d] > MAX_WINDOW)
				return bad_attr(n, "output_padding", "must be between 0 and the stride");
			a->out_pad[d] = (int)op[d];
		}
		break;
	}
	case OP_MAXPOOL:
	case OP_AVGPOOL: {
		static const char *const ok[] = {"kernel_shape", "strides", "pads", "dilations",
						 "auto_pad", "ceil_mode", "count_include_pad",
						 "storage_order", NULL};
		if ((s = check_attrs(n, np, ok)) || (s = read_window(n, np, true)))
			return s;
		a->ceil_mode = attr_int(np, "ceil_mode", 0) != 0;
		a->count_include_pad = attr_int(np, "count_include_pad", 0) != 0;
		if (attr_int(np, "storage_order", 0) != 0)
			return bad_attr(n, "storage_order", "1 (column major) is not supported");
		if (n->op == OP_AVGPOOL && (a->dilations[0] != 1 || a->dilations[1] != 1))
			return bad_attr(n, "dilations", "other than 1 are not supported for AveragePool");
		break;
	}
	case OP_GEMM: {
		static const char *const ok[] = {"alpha", "beta", "transA", "transB", "broadcast", NULL};
		if ((s = check_attrs(n, np, ok)))
			return s;
		a->alpha = attr_float(np, "alpha", 1.0f);
		a->beta = attr_float(np, "beta", 1.0f);
		a->trans_a = attr_int(np, "transA", 0) != 0;
		a->trans_b = attr_int(np, "transB", 0) != 0;
		break;
	}
	case OP_CLIP: {
		static const char *const ok[] = {"min", "max", NULL};
		if ((s = check_attrs(n, np, ok)))
			return s;
		a->clip_min = attr_float(np, "min", -INFINITY);
		a->clip_max = attr_float(np, "max", INFINITY);
		if ((s = const_scalar_input(b, n, 1, &a->clip_min)) ||
		    (s = const_scalar_input(b, n, 2, &a->clip_max)))
			return s;
		n->n_inputs = 1; /* bounds are attributes now */
		break;
	}
	case OP_BATCHNORM: {
		static const char *const ok[] = {"epsilon", "momentum", "training_mode", "spatial",
						 "is_test", "consumed_inputs", NULL};
		if ((s = check_attrs(n, np, ok)))
			return s;
		a->epsilon = attr_float(np, "epsilon", 1e-5f);
		if (attr_int(np, "training_mode", 0) != 0)
			return bad_attr(n, "training_mode", "1 is not supported (inference only)");
		if (attr_int(np, "spatial", 1) != 1)
			return bad_attr(n, "spatial", "0 is not supported");
		if (n->n_inputs != 5)
			return status_fail(PRESSO_E_FORMAT, "node '%s': BatchNormalization needs 5 inputs",
					   n->name);
		if ((s = check_variance(b, n)))
			return s;
		break;
	}
	case OP_CONCAT:
	case OP_SOFTMAX:
	case OP_LOGSOFTMAX:
	case OP_FLATTEN: {
		static const char *const ok[] = {"axis", NULL};
		if ((s = check_attrs(n, np, ok)))
			return s;
		int64_t dflt = (n->op == OP_SOFTMAX || n->op == OP_LOGSOFTMAX) && b->opset >= 13 ? -1 : 1;
		if (n->op == OP_CONCAT && !find_attr(np, "axis"))
			return status_fail(PRESSO_E_FORMAT, "node '%s': Concat needs an axis", n->name);
		int64_t ax = attr_int(np, "axis", dflt);
		if (ax < -GRAPH_MAX_DIMS || ax > GRAPH_MAX_DIMS)
			return bad_attr(n, "axis", "is out of range");
		a->axis = (int)ax;
		break;
	}
	case OP_RESHAPE: {
		static const char *const ok[] = {"allowzero", "shape", NULL};
		if ((s = check_attrs(n, np, ok)))
			return s;
		a->allowzero = attr_int(np, "allowzero", 0) != 0;
		int cnt;
		if (n->n_inputs >= 2) {
			if ((s = const_ints_input(b, n, 1, "shape", &cnt)))
				return s;
		} else {
			cnt = attr_ints(np, "shape", -1, GRAPH_MAX_DIMS, a->ints);
			a->n_ints = cnt > 0 ? cnt : 0;
		}
		if (cnt < 0)
			return status_fail(PRESSO_E_FORMAT, "node '%s': Reshape needs a shape", n->name);
		n->n_inputs = 1;
		break;
	}
	case OP_TRANSPOSE: {
		static const char *const ok[] = {"perm", NULL};
		if ((s = check_attrs(n, np, ok)))
			return s;
		int cnt = attr_ints(np, "perm", -1, GRAPH_MAX_DIMS, a->ints);
		if (cnt == -2)
			return bad_attr(n, "perm", "has too many entries");
		a->n_ints = cnt > 0 ? cnt : 0;
		break;
	}
	case OP_SQUEEZE:
	case OP_UNSQUEEZE: {
		static const char *const ok[] = {"axes", NULL};
		if ((s = check_attrs(n, np, ok)))
			return s;
		int cnt = -1;
		if (n->n_inputs >= 2) {
			if ((s = const_ints_input(b, n, 1, "axes", &cnt)))
				return s;
		} else {
			cnt = attr_ints(np, "axes", -1, GRAPH_MAX_DIMS, a->ints);
			if (cnt == -2)
				return bad_attr(n, "axes", "has too many entries");
			a->n_ints = cnt > 0 ? cnt : 0;
		}
		if (n->op == OP_UNSQUEEZE && cnt <= 0)
			return status_fail(PRESSO_E_FORMAT, "node '%s': Unsqueeze needs axes", n->name);
		/* an axis is an index into at most GRAPH_MAX_DIMS dimensions, from either end */
		for (int i = 0; i < a->n_ints; i++)
			if (a->ints[i] < -GRAPH_MAX_DIMS || a->ints[i] >= GRAPH_MAX_DIMS)
				return status_fail(PRESSO_E_UNSUPPORTED,
						   "node '%s': %s axes entry %lld is out of range (a rank is at most %d)",
						   n->name, op_name(n->op), (long long)a->ints[i],
						   GRAPH_MAX_DIMS);
		n->n_inputs = 1;
		break;
	}
	case OP_HARDSIGMOID:
	case OP_LEAKYRELU: {
		static const char *const ok_hs[] = {"alpha", "beta", NULL};
		static const char *const ok_lr[] = {"alpha", NULL};
		if ((s = check_attrs(n, np, n->op == OP_HARDSIGMOID ? ok_hs : ok_lr)))
			return s;
		a->alpha = attr_float(np, "alpha", n->op == OP_HARDSIGMOID ? 0.2f : 0.01f);
		a->beta = attr_float(np, "beta", 0.5f);
		break;
	}
	case OP_ELU:
	case OP_CELU:
	case OP_THRESHOLDEDRELU: {
		static const char *const ok[] = {"alpha", NULL};
		if ((s = check_attrs(n, np, ok)))
			return s;
		a->alpha = attr_float(np, "alpha", 1.0f);
		if (n->op == OP_CELU && !(a->alpha != 0.0f && isfinite(a->alpha)))
			return bad_attr(n, "alpha", "must be finite and not 0");
		break;
	}
	case OP_SELU: {
		static const char *const ok[] = {"alpha", "gamma", NULL};
		if ((s = check_attrs(n, np, ok)))
			return s;
		/* ONNX's defaults, as float32 */
		a->alpha = attr_float(np, "alpha", 1.67326319217681884765625f);
		a->beta = attr_float(np, "gamma", 1.05070102214813232421875f);
		break;
	}
	case OP_LRN: {
		static const char *const ok[] = {"alpha", "beta", "bias", "size", NULL};
		if ((s = check_attrs(n, np, ok)))
			return s;
		a->alpha = attr_float(np, "alpha", 1e-4f);
		a->beta = attr_float(np, "beta", 0.75f);
		a->lrn_bias = attr_float(np, "bias", 1.0f);
		int64_t size = attr_int(np, "size", 0);
		if (size < 1 || size > MAX_WINDOW)
			return bad_attr(n, "size", "must be between 1 and 1024");
		a->lrn_size = (int)size;
		break;
	}
	case OP_LAYERNORM: {
		static const char *const ok[] = {"axis", "epsilon", "stash_type", NULL};
		if ((s = check_attrs(n, np, ok)))
			return s;
		int64_t ax = attr_int(np, "axis", -1);
		if (ax < -GRAPH_MAX_DIMS || ax > GRAPH_MAX_DIMS)
			return bad_attr(n, "axis", "is out of range");
		a->axis = (int)ax;
		a->epsilon = attr_float(np, "epsilon", 1e-5f);
		if (attr_int(np, "stash_type", 1) != 1)
			return bad_attr(n, "stash_type", "other than 1 (float) is not supported");
		break;
	}
	case OP_PAD:
		return read_pad(b, n, np);
	case OP_RESIZE:
		return read_resize(b, n, np);
	case OP_MAX:
	case OP_MIN: {
		static const char *const ok[] = {NULL};
		if ((s = check_attrs(n, np, ok)))
			return s;
		if (n->n_inputs == 1)
			n->op = OP_IDENTITY; /* the larger of one tensor */
		else if (n->n_inputs != 2)
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': %s of %d inputs is not supported",
					   n->name, onnx_op, n->n_inputs);
		break;
	}
	case OP_POW:
		return read_pow(b, n, np);
	case OP_IDENTITY:
		if (strcmp(onnx_op, "Cast") == 0) {
			static const char *const ok[] = {"to", "saturate", NULL};
			if ((s = check_attrs(n, np, ok)))
				return s;
			int64_t to = attr_int(np, "to", 0);
			if (to != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
				return status_fail(PRESSO_E_UNSUPPORTED,
						   "node '%s': Cast of a computed tensor to %s is not supported (only to float)",
						   n->name, dtype_name((int32_t)to));
		} else if (strcmp(onnx_op, "Dropout") == 0) {
			static const char *const ok[] = {"ratio", "seed", "is_test", NULL};
			if ((s = check_attrs(n, np, ok)))
				return s;
			const struct value *tm = input_value(b, n, 2);
			if (tm && !(tm->idata && tm->idata[0] == 0) && !(tm->data && tm->data[0] == 0))
				return status_fail(PRESSO_E_UNSUPPORTED,
						   "node '%s': Dropout in training mode is not supported",
						   n->name);
		} else {
			static const char *const ok[] = {NULL};
			if ((s = check_attrs(n, np, ok)))
				return s;
		}
		n->n_inputs = 1;
		break;
	default: {
		static const char *const ok[] = {NULL};
		if ((s = check_attrs(n, np, ok)))
			return s;
		break;
	}
	}
	return PRESSO_OK;
}

static int min_inputs(enum op_type op)
{
	switch (op) {
	case OP_CONV:
	case OP_CONVTRANSPOSE:
	case OP_GEMM:
	case OP_MATMUL:
	case OP_ADD:
	case OP_PRELU:
	case OP_MUL:
	case OP_SUB:
	case OP_DIV:
	case OP_POW:
	case OP_LAYERNORM:
		return 2;
	case OP_BATCHNORM:
		return 5;
	default:
		return 1;
	}
}

/* Ops of a variable number of inputs, none of them optional (an empty name
 * among them is a malformed model, not an omitted input). */
static bool inputs_all_required(enum op_type op)
{
	return op == OP_CONCAT || op == OP_SUM || op == OP_MAX || op == OP_MIN;
}

static int max_inputs(enum op_type op)
{
	if (op_is_reduce(op))
		return 2; /* data, axes */
	switch (op) {
	case OP_CONV:
	case OP_CONVTRANSPOSE:
	case OP_GEMM:
	case OP_CLIP:
	case OP_IDENTITY: /* Dropout: data, ratio, training_mode */
		return 3;
	case OP_MATMUL:
	case OP_ADD:
	case OP_RESHAPE:
	case OP_SQUEEZE:
	case OP_UNSQUEEZE:
	case OP_PRELU:
	case OP_MUL:
	case OP_SUB:
	case OP_DIV:
	case OP_POW:
		return 2;
	case OP_LAYERNORM:
		return 3;
	case OP_PAD: /* data, pads, constant_value, axes */
	case OP_RESIZE: /* X, roi, scales, sizes */
		return 4;
	case OP_BATCHNORM:
		return 5;
	case OP_CONCAT:
	case OP_SUM:
	case OP_MAX: /* variadic: 1 or 2 are taken (read_attrs) */
	case OP_MIN:
		return GRAPH_MAX_INPUTS;
	default:
		return 1;
	}
}

static enum presso_status add_node(struct builder *b, struct node *n)
{
	struct graph *g = b->g;
	if (g->n_nodes == b->cap_nodes) {
		int cap = b->cap_nodes ? b->cap_nodes * 2 : 64;
		struct node *nn = realloc(g->nodes, sizeof *nn * (size_t)cap);
		if (!nn)
			return status_fail(PRESSO_E_NOMEM, "out of memory");
		g->nodes = nn;
		b->cap_nodes = cap;
	}
	g->nodes[g->n_nodes++] = *n;
	return PRESSO_OK;
}

/* Evaluates a node whose inputs are all float constants into a constant output. */
static enum presso_status fold_node(struct builder *b, struct node *n, int out_v)
{
	struct graph *g = b->g;
	struct shape shapes[GRAPH_MAX_INPUTS + 1];
	const float *in[GRAPH_MAX_INPUTS] = {NULL};
	struct node mini = *n;
	for (int i = 0; i < n->n_inputs; i++) {
		mini.inputs[i] = n->inputs[i] >= 0 ? i : -1;
		if (n->inputs[i] >= 0) {
			shapes[i] = g->values[n->inputs[i]].shape;
			in[i] = g->values[n->inputs[i]].data;
		}
	}
	mini.output = n->n_inputs;
	enum presso_status s = graph_infer_node(g, &mini, shapes, &shapes[mini.output]);
	if (s != PRESSO_OK)
		return s;
	size_t count = (size_t)shape_numel(&shapes[mini.output]);
	if ((s = fold_budget(b, n->name, op_name(n->op), (int64_t)count, sizeof(float))))
		return s;
	size_t scratch_bytes = engine_node_scratch_bytes(g, &mini, shapes);
	float *out = malloc(sizeof(float) * (count ? count : 1));
	float *scratch = malloc(scratch_bytes ? scratch_bytes : 1);
	if (!out || !scratch) {
		free(out);
		free(scratch);
		return status_fail(PRESSO_E_NOMEM, "node '%s': out of memory folding constants",
				   n->name);
	}
	engine_exec_node(g, &mini, shapes, in, out, scratch, -INFINITY, INFINITY);
	free(scratch);
	struct value *v = &g->values[out_v];
	v->shape = shapes[mini.output];
	v->data = out;
	v->dtype = DTYPE_F32;
	g->n_folded_const++;
	return PRESSO_OK;
}

/* Copies an int64 constant through a shape-only op (Reshape/Squeeze/... of ints). */
static enum presso_status fold_int_node(struct builder *b, struct node *n, int out_v)
{
	struct graph *g = b->g;
	const struct value *x = &g->values[n->inputs[0]];
	struct shape shapes[2] = {x->shape};
	struct node mini = *n;
	mini.inputs[0] = 0;
	mini.output = 1;
	enum presso_status s = graph_infer_node(g, &mini, shapes, &shapes[1]);
	if (s != PRESSO_OK)
		return s;
	size_t count = (size_t)shape_numel(&x->shape);
	if ((s = fold_budget(b, n->name, op_name(n->op), (int64_t)count, sizeof(int64_t))))
		return s;
	int64_t *out = malloc(sizeof(int64_t) * (count ? count : 1));
	if (!out)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	memcpy(out, x->idata, sizeof(int64_t) * count);
	struct value *v = &g->values[out_v];
	v->shape = shapes[1];
	v->idata = out;
	v->dtype = DTYPE_I64;
	g->n_folded_const++;
	return PRESSO_OK;
}

/* --- folding at load: shapes and integer constants --------------------------- */

static enum presso_status infer_and_resolve(struct graph *g);

/* The shape of value v from the nodes imported so far, with SYM_DIM(k) for
 * the dimensions that follow the batch (k at batch 1, 2k at batch 2; a graph
 * that only runs at one batch has none). */
static enum presso_status prefix_shape(struct builder *b, int v, int64_t *dims, int *rank)
{
	struct graph *g = b->g;
	enum presso_status s = infer_and_resolve(g);
	if (s != PRESSO_OK)
		return s;
	struct shape *s2 = malloc(sizeof *s2 * (size_t)g->n_values);
	if (!s2)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	bool two = graph_infer_shapes(g, 2, s2) == PRESSO_OK;
	status_clear();
	const struct shape *s1 = &g->values[v].shape;
	*rank = s1->n_dims;
	for (int d = 0; d < s1->n_dims; d++)
		dims[d] = two && s2[v].dims[d] == 2 * s1->dims[d] && s1->dims[d] != 0
				  ? SYM_DIM(s1->dims[d])
				  : s1->dims[d];
	free(s2);
	return PRESSO_OK;
}

/* Refuses a fold whose output, count elements of elem_bytes each, would take
 * the constants folded in the model past FOLD_MAX_BYTES; called before the
 * output is allocated. */
static enum presso_status fold_budget(struct builder *b, const char *name, const char *op,
				      int64_t count, size_t elem_bytes)
{
	int64_t bytes = count * (int64_t)elem_bytes; /* count <= GRAPH_MAX_ELEMS */
	if (bytes > FOLD_MAX_BYTES - b->folded_bytes)
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "node '%s': %s makes a constant of %lld elements, past the %lld MiB of constants presso folds in a model (the shapes, masks and tokens of real models are far smaller)",
				   name, op, (long long)count, (long long)(FOLD_MAX_BYTES >> 20));
	b->folded_bytes += bytes;
	return PRESSO_OK;
}

/* A new int64 (or float) constant value of the given shape into out_v. */
static enum presso_status set_const(struct builder *b, int out_v, const struct shape *sh,
				    int64_t *idata, float *data)
{
	struct value *v = &b->g->values[out_v];
	v->shape = *sh;
	v->idata = idata;
	v->data = data;
	v->dtype = idata ? DTYPE_I64 : DTYPE_F32;
	b->g->n_folded_const++;
	return PRESSO_OK;
}

static bool has_sym(const struct value *v)
{
	int64_t n = shape_numel(&v->shape);
	for (int64_t i = 0; v->idata && i < n; i++)
		if (is_sym(v->idata[i]))
			return true;
	return false;
}

static enum presso_status depends_on_batch(const char *name, const char *op, const char *what)
{
	return status_fail(PRESSO_E_UNSUPPORTED,
			   "node '%s': %s of %s that depends on the batch size (the Shape of a batched tensor) is not supported",
			   name, op, what);
}

/* Shape(x)[start:end]; Size(x). */
static enum presso_status fold_shape(struct builder *b, const Onnx__NodeProto *np,
				     const char *name, const char *op, int x, int out_v)
{
	int64_t dims[GRAPH_MAX_DIMS];
	int rank = 0;
	if (value_is_const(&b->g->values[x])) {
		rank = b->g->values[x].shape.n_dims;
		memcpy(dims, b->g->values[x].shape.dims, sizeof(int64_t) * (size_t)rank);
	} else {
		enum presso_status s = prefix_shape(b, x, dims, &rank);
		if (s != PRESSO_OK)
			return status_wrap(s, "node '%s' (%s)", name, op);
	}
	struct shape sh = {.n_dims = 1};
	if (strcmp(op, "Size") == 0) {
		if (np->n_attribute)
			return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': Size attribute '%s' is not supported",
					   name, np->attribute[0]->name);
		int64_t *out = malloc(sizeof(int64_t));
		if (!out)
			return status_fail(PRESSO_E_NOMEM, "out of memory");
		*out = 1;
		for (int d = 0; d < rank; d++) {
			if (is_sym(dims[d])) {
				free(out);
				return depends_on_batch(name, op, "a tensor");
			}
			*out *= dims[d];
		}
		sh.n_dims = 0;
		return set_const(b, out_v, &sh, out, NULL);
	}
	for (size_t i = 0; i < np->n_attribute; i++) {
		const char *a = np->attribute[i]->name ? np->attribute[i]->name : "";
		if (strcmp(a, "start") != 0 && strcmp(a, "end") != 0)
			return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': Shape attribute '%s' is not supported",
					   name, a);
	}
	int64_t start = attr_int(np, "start", 0), end = attr_int(np, "end", rank);
	start = start < 0 ? start + rank : start;
	end = end < 0 ? end + rank : end;
	start = start < 0 ? 0 : start > rank ? rank : start;
	end = end < start ? start : end > rank ? rank : end;
	sh.dims[0] = end - start;
	int64_t *out = malloc(sizeof(int64_t) * (size_t)(sh.dims[0] ? sh.dims[0] : 1));
	if (!out)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	for (int64_t d = start; d < end; d++)
		out[d - start] = dims[d];
	return set_const(b, out_v, &sh, out, NULL);
}

/* ConstantOfShape(shape) filled with its value attribute (float 0 by default). */
static enum presso_status fold_constant_of_shape(struct builder *b, const Onnx__NodeProto *np,
						 const char *name, int x, int out_v)
{
	const struct value *xv = &b->g->values[x];
	for (size_t i = 0; i < np->n_attribute; i++)
		if (!np->attribute[i]->name || strcmp(np->attribute[i]->name, "value") != 0)
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': ConstantOfShape attribute '%s' is not supported", name,
					   np->attribute[i]->name ? np->attribute[i]->name : "");
	if (!xv->idata || xv->shape.n_dims != 1)
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "node '%s': ConstantOfShape needs a constant 1-D int64 shape", name);
	if (has_sym(xv)) {
		const Onnx__AttributeProto *va = find_attr(np, "value");
		struct value fill = {.name = NULL};
		bool zero = !va || !va->t;
		if (!zero && tensor_to_value(va->t, b->base_dir, &fill) == PRESSO_OK && fill.data &&
		    shape_numel(&fill.shape) == 1)
			zero = fill.data[0] == 0.0f;
		status_clear();
		free(fill.data);
		free(fill.idata);
		return zero ? mark_batch_zeros(b, out_v, name)
			    : depends_on_batch(name, "ConstantOfShape", "a shape");
	}
	struct shape sh = {.n_dims = (int)xv->shape.dims[0]};
	if (sh.n_dims > GRAPH_MAX_DIMS)
		return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': ConstantOfShape of rank %d (at most %d)",
				   name, sh.n_dims, GRAPH_MAX_DIMS);
	for (int d = 0; d < sh.n_dims; d++) {
		if (xv->idata[d] < 0)
			return status_fail(PRESSO_E_FORMAT, "node '%s': ConstantOfShape to a negative size",
					   name);
		sh.dims[d] = xv->idata[d];
	}
	int64_t count;
	if (!shape_numel_checked(&sh, &count))
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "node '%s': ConstantOfShape of more than %lld elements", name,
				   (long long)GRAPH_MAX_ELEMS);
	enum presso_status grow = fold_budget(b, name, "ConstantOfShape", count, sizeof(int64_t));
	if (grow != PRESSO_OK)
		return grow;
	/* the fill value: a one-element tensor, float 0 when absent */
	struct value fill = {.name = NULL};
	const Onnx__AttributeProto *a = find_attr(np, "value");
	if (a && a->t) {
		enum presso_status s = tensor_to_value(a->t, b->base_dir, &fill);
		if (s != PRESSO_OK)
			return status_wrap(s, "node '%s' (ConstantOfShape)", name);
		if (shape_numel(&fill.shape) != 1) {
			free(fill.data);
			free(fill.idata);
			return status_fail(PRESSO_E_FORMAT, "node '%s': ConstantOfShape value must have one element",
					   name);
		}
	}
	size_t n = (size_t)(count ? count : 1);
	float *f = fill.idata ? NULL : malloc(sizeof(float) * n);
	int64_t *l = fill.idata ? malloc(sizeof(int64_t) * n) : NULL;
	if (!f && !l) {
		free(fill.data);
		free(fill.idata);
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	}
	for (int64_t i = 0; i < count; i++) {
		if (f)
			f[i] = fill.data ? fill.data[0] : 0.0f;
		else
			l[i] = fill.idata[0];
	}
	free(fill.data);
	free(fill.idata);
	return set_const(b, out_v, &sh, l, f);
}

/* EyeLike of a constant 2-D tensor: ones on diagonal k (y[i][i + k]), as
 * float (the only dtype taken). presso's own export makes a projected
 * recurrent layer's W so. */
static enum presso_status fold_eyelike(struct builder *b, const Onnx__NodeProto *np,
				       const char *name, int x, int out_v)
{
	const struct value *xv = &b->g->values[x];
	for (size_t i = 0; i < np->n_attribute; i++) {
		const Onnx__AttributeProto *a = np->attribute[i];
		bool ok = a->name && (strcmp(a->name, "k") == 0 ||
				      (strcmp(a->name, "dtype") == 0 &&
				       a->i == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT));
		if (!ok)
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': EyeLike attribute '%s' is not supported", name,
					   a->name ? a->name : "");
	}
	if (!value_is_const(xv) || xv->shape.n_dims != 2)
		return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': EyeLike needs a constant 2-D input",
				   name);
	int64_t rows = xv->shape.dims[0], cols = xv->shape.dims[1], k = attr_int(np, "k", 0);
	int64_t count = shape_numel(&xv->shape);
	enum presso_status s = fold_budget(b, name, "EyeLike", count, sizeof(float));
	if (s != PRESSO_OK)
		return s;
	float *f = calloc((size_t)(count ? count : 1), sizeof(float));
	if (!f)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	for (int64_t i = 0; i < rows; i++)
		if (k > -rows && k < cols && i + k >= 0 && i + k < cols)
			f[i * cols + i + k] = 1.0f;
	return set_const(b, out_v, &xv->shape, NULL, f);
}

/* Cast of a constant: to float (from any type), or to an integer type or bool
 * (a float truncated toward zero, a bool as 0 or 1). */
static enum presso_status fold_cast(struct builder *b, const Onnx__NodeProto *np,
				    const char *name, int x, int out_v)
{
	for (size_t i = 0; i < np->n_attribute; i++) {
		const char *an = np->attribute[i]->name ? np->attribute[i]->name : "";
		if (strcmp(an, "to") != 0 && strcmp(an, "saturate") != 0)
			return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': Cast attribute '%s' is not supported",
					   name, an);
	}
	const struct value *xv = &b->g->values[x];
	int64_t to = attr_int(np, "to", 0), n = shape_numel(&xv->shape);
	bool to_float = to == ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT ||
			to == ONNX__TENSOR_PROTO__DATA_TYPE__DOUBLE;
	bool to_int = to == ONNX__TENSOR_PROTO__DATA_TYPE__INT64 ||
		      to == ONNX__TENSOR_PROTO__DATA_TYPE__INT32 ||
		      to == ONNX__TENSOR_PROTO__DATA_TYPE__INT16 ||
		      to == ONNX__TENSOR_PROTO__DATA_TYPE__INT8 ||
		      to == ONNX__TENSOR_PROTO__DATA_TYPE__UINT8 ||
		      to == ONNX__TENSOR_PROTO__DATA_TYPE__UINT16 ||
		      to == ONNX__TENSOR_PROTO__DATA_TYPE__UINT32 ||
		      to == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL;
	if (!to_float && !to_int)
		return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': Cast to %s is not supported", name,
				   dtype_name((int32_t)to));
	if (to_float && has_sym(xv))
		return depends_on_batch(name, "Cast", "a shape");
	enum presso_status st = fold_budget(b, name, "Cast", n, to_float ? sizeof(float) : sizeof(int64_t));
	if (st != PRESSO_OK)
		return st;
	float *f = to_float ? malloc(sizeof(float) * (size_t)(n ? n : 1)) : NULL;
	int64_t *l = to_int ? malloc(sizeof(int64_t) * (size_t)(n ? n : 1)) : NULL;
	if (!f && !l)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	bool to_bool = to == ONNX__TENSOR_PROTO__DATA_TYPE__BOOL;
	for (int64_t i = 0; i < n; i++) {
		if (f) {
			f[i] = xv->data ? xv->data[i] : (float)xv->idata[i];
		} else if (xv->idata) {
			l[i] = to_bool && !is_sym(xv->idata[i]) ? xv->idata[i] != 0 : xv->idata[i];
		} else {
			float v = xv->data[i];
			if (!(fabsf(v) < 9.2e18f)) { /* NaN, inf, or past int64 */
				free(l);
				return status_fail(PRESSO_E_UNSUPPORTED,
						   "node '%s': Cast of %g to an integer type", name, (double)v);
			}
			l[i] = to_bool ? v != 0.0f : (int64_t)v;
		}
	}
	struct shape sh = xv->shape;
	return set_const(b, out_v, &sh, l, f);
}

/* Gather of a computed tensor with constant indices that step evenly along a
 * static dimension (one index, as x[:, 0] exports, or a range): a Slice, and
 * for a scalar index a Squeeze of the sliced dimension after it. */
static enum presso_status gather_computed(struct builder *b, const char *name, int x, int idx,
					  int64_t axis, int out_v)
{
	const struct value *iv = &b->g->values[idx];
	int64_t n_idx = shape_numel(&iv->shape);
	if (!iv->idata || iv->shape.n_dims > 1 || n_idx < 1)
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "node '%s': Gather of a computed tensor needs constant integer indices (a scalar or a list)",
				   name);
	bool scalar = iv->shape.n_dims == 0;
	struct shape xs;
	enum presso_status s = prefix_shape(b, x, xs.dims, &xs.n_dims);
	if (s != PRESSO_OK)
		return status_wrap(s, "node '%s' (Gather)", name);
	iv = &b->g->values[idx];
	axis = axis < 0 ? axis + xs.n_dims : axis;
	if (axis < 0 || axis >= xs.n_dims)
		return status_fail(PRESSO_E_FORMAT, "node '%s': Gather axis out of range", name);
	int64_t dim = xs.dims[axis];
	if (is_sym(dim))
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "node '%s': Gather along a dimension that follows the batch is not supported",
				   name);
	int64_t first = 0, step = 1;
	for (int64_t k = 0; k < n_idx; k++) {
		int64_t j = iv->idata[k];
		if (j < -dim || j >= dim)
			return status_fail(PRESSO_E_FORMAT, "node '%s': Gather index %lld out of range for %lld",
					   name, (long long)j, (long long)dim);
		j = j < 0 ? j + dim : j;
		if (k == 0)
			first = j;
		else if (k == 1)
			step = j - first;
		if (k > 0 && (step == 0 || j != first + k * step))
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': Gather of a computed tensor at indices that do not step evenly is not supported",
					   name);
	}
	if (!scalar)
		return slice_one_axis(b, name, x, &xs, (int)axis, first, n_idx, step, out_v);
	int t = add_derived_value(b, b->g->values[out_v].name, "gather");
	if (t < 0)
		return PRESSO_E_NOMEM;
	char part[300];
	snprintf(part, sizeof part, "%s#slice", name);
	if ((s = slice_one_axis(b, part, x, &xs, (int)axis, first, 1, 1, t)) != PRESSO_OK)
		return s;
	struct node sq = {.op = OP_SQUEEZE, .n_inputs = 1, .output = out_v};
	sq.inputs[0] = t;
	sq.a.n_ints = 1;
	sq.a.ints[0] = axis;
	sq.name = strdup(name);
	if (!sq.name)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	b->g->values[out_v].producer = b->g->n_nodes;
	s = add_node(b, &sq);
	if (s != PRESSO_OK)
		free(sq.name);
	return s;
}

/* Gather(data, indices) along axis, both constants (or see gather_computed). */
static enum presso_status fold_gather(struct builder *b, const Onnx__NodeProto *np,
				      const char *name, int x, int idx, int out_v)
{
	for (size_t i = 0; i < np->n_attribute; i++)
		if (!np->attribute[i]->name || strcmp(np->attribute[i]->name, "axis") != 0)
			return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': Gather attribute '%s' is not supported",
					   name, np->attribute[i]->name ? np->attribute[i]->name : "");
	const struct value *xv = &b->g->values[x], *iv = &b->g->values[idx];
	if (!value_is_const(xv))
		return gather_computed(b, name, x, idx, attr_int(np, "axis", 0), out_v);
	if (!iv->idata)
		return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': Gather indices must be constant integers",
				   name);
	int r = xv->shape.n_dims;
	int64_t axis = attr_int(np, "axis", 0);
	axis = axis < 0 ? axis + r : axis;
	if (axis < 0 || axis >= r || r - 1 + iv->shape.n_dims > GRAPH_MAX_DIMS)
		return status_fail(PRESSO_E_FORMAT, "node '%s': Gather axis or rank out of range", name);
	int64_t outer = 1, inner = 1, dim = xv->shape.dims[axis], n_idx = shape_numel(&iv->shape);
	for (int d = 0; d < axis; d++)
		outer *= xv->shape.dims[d];
	for (int d = (int)axis + 1; d < r; d++)
		inner *= xv->shape.dims[d];
	struct shape sh = {.n_dims = 0};
	for (int d = 0; d < axis; d++)
		sh.dims[sh.n_dims++] = xv->shape.dims[d];
	for (int d = 0; d < iv->shape.n_dims; d++)
		sh.dims[sh.n_dims++] = iv->shape.dims[d];
	for (int d = (int)axis + 1; d < r; d++)
		sh.dims[sh.n_dims++] = xv->shape.dims[d];
	int64_t count;
	if (!shape_numel_checked(&sh, &count))
		return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': Gather output too large", name);
	for (int64_t k = 0; k < n_idx; k++)
		if (iv->idata[k] < -dim || iv->idata[k] >= dim)
			return status_fail(PRESSO_E_FORMAT, "node '%s': Gather index %lld out of range for %lld",
					   name, (long long)iv->idata[k], (long long)dim);
	enum presso_status st =
		fold_budget(b, name, "Gather", count, xv->data ? sizeof(float) : sizeof(int64_t));
	if (st != PRESSO_OK)
		return st;
	size_t nb = (size_t)(count ? count : 1);
	float *f = xv->data ? malloc(sizeof(float) * nb) : NULL;
	int64_t *l = xv->idata ? malloc(sizeof(int64_t) * nb) : NULL;
	if (!f && !l)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	int64_t o = 0;
	for (int64_t a = 0; a < outer; a++)
		for (int64_t k = 0; k < n_idx; k++) {
			int64_t j = iv->idata[k] < 0 ? iv->idata[k] + dim : iv->idata[k];
			for (int64_t i = 0; i < inner; i++, o++) {
				int64_t src = (a * dim + j) * inner + i;
				if (f)
					f[o] = xv->data[src];
				else
					l[o] = xv->idata[src];
			}
		}
	return set_const(b, out_v, &sh, l, f);
}

/* Copies the strided box of the constant xv that starts at lo[d] and steps by
 * step[d] in each dimension into a new constant out_v of shape sh. */
static enum presso_status copy_box(struct builder *b, const char *name, const struct value *xv,
				   const int64_t *lo, const int64_t *step, const struct shape *sh,
				   int out_v)
{
	int r = xv->shape.n_dims;
	int64_t count = shape_numel(sh);
	enum presso_status st =
		fold_budget(b, name, "Slice", count, xv->data ? sizeof(float) : sizeof(int64_t));
	if (st != PRESSO_OK)
		return st;
	size_t nb = (size_t)(count ? count : 1);
	float *f = xv->data ? malloc(sizeof(float) * nb) : NULL;
	int64_t *l = xv->idata ? malloc(sizeof(int64_t) * nb) : NULL;
	if (!f && !l)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	int64_t idx[GRAPH_MAX_DIMS] = {0};
	for (int64_t o = 0; o < count; o++) {
		int64_t src = 0;
		for (int d = 0; d < r; d++)
			src = src * xv->shape.dims[d] + lo[d] + idx[d] * step[d];
		if (f)
			f[o] = xv->data[src];
		else
			l[o] = xv->idata[src];
		for (int d = r - 1; d >= 0; d--) {
			if (++idx[d] < sh->dims[d])
				break;
			idx[d] = 0;
		}
	}
	struct shape s = *sh;
	return set_const(b, out_v, &s, l, f);
}

/* A one-axis slice (first, count, step along axis) of the tensor x: folded
 * when x is a constant, else an OP_SLICE node named name writing out_v. */
static enum presso_status slice_one_axis(struct builder *b, const char *name, int x,
					 const struct shape *xs, int axis, int64_t first,
					 int64_t count, int64_t step, int out_v)
{
	struct graph *g = b->g;
	if (value_is_const(&g->values[x])) {
		int64_t lo[GRAPH_MAX_DIMS] = {0}, st[GRAPH_MAX_DIMS];
		struct shape sh = *xs;
		for (int d = 0; d < xs->n_dims; d++)
			st[d] = 1;
		lo[axis] = first;
		st[axis] = step;
		sh.dims[axis] = count;
		return copy_box(b, name, &g->values[x], lo, st, &sh, out_v);
	}
	struct node n = {.op = OP_SLICE, .n_inputs = 1, .output = out_v};
	n.inputs[0] = x;
	n.a.axis = axis;
	n.a.n_ints = 3;
	n.a.ints[0] = first;
	n.a.ints[1] = count;
	n.a.ints[2] = step;
	n.name = strdup(name);
	if (!n.name)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	g->values[out_v].producer = g->n_nodes;
	enum presso_status s = add_node(b, &n);
	if (s != PRESSO_OK)
		free(n.name);
	return s;
}

/* Slice: starts, ends, axes, steps as inputs (opset >= 10) or attributes
 * (starts, ends, axes; steps 1), all constant. Of a constant it folds; of a
 * computed tensor it becomes an OP_SLICE per sliced dimension, each of which
 * must be static (not the batch). */
static enum presso_status import_slice(struct builder *b, const Onnx__NodeProto *np,
				       const char *name, const int *in, int n_in, int out_v)
{
	struct shape xs;
	int r;
	if (value_is_const(&b->g->values[in[0]])) {
		xs = b->g->values[in[0]].shape;
	} else {
		enum presso_status s = prefix_shape(b, in[0], xs.dims, &xs.n_dims);
		if (s != PRESSO_OK)
			return status_wrap(s, "node '%s' (Slice)", name);
	}
	r = xs.n_dims;
	int64_t starts[GRAPH_MAX_DIMS], ends[GRAPH_MAX_DIMS], axes[GRAPH_MAX_DIMS],
		steps[GRAPH_MAX_DIMS];
	int64_t *lists[4] = {starts, ends, axes, steps};
	int counts[4] = {-1, -1, -1, -1};
	static const char *const names[4] = {"starts", "ends", "axes", "steps"};
	for (int k = 0; k < 4; k++) {
		if (n_in > 1) {
			if (k + 1 >= n_in || in[k + 1] < 0)
				continue;
			const struct value *v = &b->g->values[in[k + 1]];
			if (!v->idata || shape_numel(&v->shape) > r)
				return status_fail(PRESSO_E_UNSUPPORTED,
						   "node '%s': Slice %s must be a constant integer list of at most %d entries",
						   name, names[k], r);
			counts[k] = (int)shape_numel(&v->shape);
			for (int i = 0; i < counts[k]; i++) {
				if (is_sym(v->idata[i]))
					return depends_on_batch(name, "Slice", names[k]);
				lists[k][i] = v->idata[i];
			}
		} else if (k < 3) {
			counts[k] = attr_ints(np, names[k], -1, r, lists[k]);
			if (counts[k] == -2)
				return status_fail(PRESSO_E_FORMAT, "node '%s': Slice %s has too many entries",
						   name, names[k]);
		}
	}
	if (counts[0] < 0 || counts[1] != counts[0])
		return status_fail(PRESSO_E_FORMAT, "node '%s': Slice needs starts and ends of one length",
				   name);
	int n = counts[0];
	if ((counts[2] >= 0 && counts[2] != n) || (counts[3] >= 0 && counts[3] != n))
		return status_fail(PRESSO_E_FORMAT, "node '%s': Slice axes or steps of another length", name);
	int64_t lo[GRAPH_MAX_DIMS], step[GRAPH_MAX_DIMS];
	struct shape sh = xs;
	for (int d = 0; d < r; d++) {
		lo[d] = 0;
		step[d] = 1;
	}
	bool seen[GRAPH_MAX_DIMS] = {false};
	int n_cut = 0, cut = -1;
	for (int i = 0; i < n; i++) {
		int64_t ax = counts[2] >= 0 ? axes[i] : i;
		ax = ax < 0 ? ax + r : ax;
		int64_t st = counts[3] >= 0 ? steps[i] : 1;
		if (ax < 0 || ax >= r || seen[ax] || st == 0 || st == INT64_MIN)
			return status_fail(PRESSO_E_FORMAT, "node '%s': Slice axis or step invalid", name);
		seen[ax] = true;
		int64_t dim = xs.dims[ax], a = starts[i], e = ends[i];
		if (is_sym(dim)) {
			if (st == 1 && a == 0 && e >= INT32_MAX)
				continue; /* all of it */
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': Slice along a dimension that follows the batch is not supported",
					   name);
		}
		a = a < 0 ? (a < -dim ? -dim : a) + dim : a;
		e = e < 0 ? (e < -dim - 1 ? -dim - 1 : e) + dim : e;
		/* clamp as the spec does: [0, dim] going forward, [-1, dim - 1] back */
		if (st > 0) {
			a = a > dim ? dim : a;
			e = e < 0 ? 0 : e > dim ? dim : e;
			sh.dims[ax] = e > a ? (e - a - 1) / st + 1 : 0;
		} else {
			a = a < 0 ? -1 : a > dim - 1 ? dim - 1 : a;
			e = e < -1 ? -1 : e > dim - 1 ? dim - 1 : e;
			sh.dims[ax] = a > e ? (a - e - 1) / -st + 1 : 0;
		}
		lo[ax] = a;
		step[ax] = st;
		if (sh.dims[ax] != dim || st != 1) {
			n_cut++;
			cut = (int)ax;
		}
	}
	if (value_is_const(&b->g->values[in[0]]))
		return copy_box(b, name, &b->g->values[in[0]], lo, step, &sh, out_v);
	if (n_cut > 1) {
		/* one OP_SLICE per sliced dimension, "<name>#<d>" writing
		 * "<output>#<d>", the last one the output */
		int x = in[0];
		struct shape cur = xs;
		for (int d = 0; d < r; d++) {
			if (cur.dims[d] == sh.dims[d] && step[d] == 1)
				continue;
			char part[300];
			snprintf(part, sizeof part, "%s#%d", name, d);
			int v = --n_cut == 0 ? out_v : add_derived_value(b, np->output[0], "slice");
			if (v < 0)
				return PRESSO_E_NOMEM;
			enum presso_status s = slice_one_axis(b, part, x, &cur, d, lo[d], sh.dims[d],
							      step[d], v);
			if (s != PRESSO_OK)
				return s;
			cur.dims[d] = sh.dims[d];
			x = v;
		}
		return PRESSO_OK;
	}
	if (n_cut == 0) { /* the whole tensor: an Identity */
		struct node id = {.op = OP_IDENTITY, .n_inputs = 1, .output = out_v};
		id.inputs[0] = in[0];
		id.name = strdup(name);
		if (!id.name)
			return status_fail(PRESSO_E_NOMEM, "out of memory");
		b->g->values[out_v].producer = b->g->n_nodes;
		enum presso_status s = add_node(b, &id);
		if (s != PRESSO_OK)
			free(id.name);
		return s;
	}
	return slice_one_axis(b, name, in[0], &xs, cut, lo[cut], sh.dims[cut], step[cut], out_v);
}

/* Split into one-axis slices (OP_SLICE nodes "<name>#<k>", or constants):
 * sizes from the split input (opset >= 13) or attribute, else equal parts
 * (num_outputs in opset 18, else one per output; the last one smaller when
 * they do not divide). Outputs left unnamed are not computed. */
static enum presso_status import_split(struct builder *b, const Onnx__NodeProto *np,
				       const char *name)
{
	static const char *const ok[] = {"axis", "split", "num_outputs", NULL};
	for (size_t i = 0; i < np->n_attribute; i++) {
		const char *a = np->attribute[i]->name ? np->attribute[i]->name : "";
		bool known = false;
		for (const char *const *k = ok; *k && !known; k++)
			known = strcmp(*k, a) == 0;
		if (!known)
			return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': Split attribute '%s' is not supported",
					   name, a);
	}
	if (np->n_input < 1 || np->n_input > 2 || !np->input[0] || !*np->input[0])
		return status_fail(PRESSO_E_FORMAT, "node '%s': Split has %zu inputs", name, np->n_input);
	int x = map_find(b, np->input[0]);
	if (x < 0)
		return status_fail(PRESSO_E_FORMAT,
				   "node '%s': Split input '%s' is not produced by any earlier node, initializer or graph input",
				   name, np->input[0]);
	struct shape xs;
	if (value_is_const(&b->g->values[x])) {
		xs = b->g->values[x].shape;
	} else {
		enum presso_status s = prefix_shape(b, x, xs.dims, &xs.n_dims);
		if (s != PRESSO_OK)
			return status_wrap(s, "node '%s' (Split)", name);
	}
	int64_t axis = attr_int(np, "axis", 0);
	axis = axis < 0 ? axis + xs.n_dims : axis;
	if (axis < 0 || axis >= xs.n_dims)
		return status_fail(PRESSO_E_FORMAT, "node '%s': Split axis out of range", name);
	int64_t dim = xs.dims[axis];
	if (is_sym(dim))
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "node '%s': Split along a dimension that follows the batch is not supported",
				   name);
	size_t n_out = np->n_output;
	if (n_out < 1 || n_out > 4096)
		return status_fail(PRESSO_E_FORMAT, "node '%s': Split has %zu outputs", name, n_out);
	int64_t *sizes = malloc(sizeof(int64_t) * n_out);
	if (!sizes)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	const Onnx__AttributeProto *sa = find_attr(np, "split");
	int si = np->n_input > 1 && np->input[1] && *np->input[1] ? map_find(b, np->input[1]) : -1;
	const struct value *sv = si >= 0 ? &b->g->values[si] : NULL;
	enum presso_status s = PRESSO_OK;
	int64_t total = 0;
	if (np->n_input > 1 && np->input[1] && *np->input[1] &&
	    (!sv || !sv->idata || shape_numel(&sv->shape) != (int64_t)n_out)) {
		s = status_fail(PRESSO_E_UNSUPPORTED,
				"node '%s': Split sizes must be a constant integer list of %zu entries", name,
				n_out);
	} else if (sv || sa) {
		if (sa && sa->n_ints != n_out)
			s = status_fail(PRESSO_E_FORMAT, "node '%s': Split has %zu sizes for %zu outputs",
					name, sa->n_ints, n_out);
		for (size_t k = 0; s == PRESSO_OK && k < n_out; k++) {
			sizes[k] = sv ? sv->idata[k] : sa->ints[k];
			if (sizes[k] < 0 || sizes[k] > dim)
				s = status_fail(PRESSO_E_FORMAT, "node '%s': Split size %lld", name,
						(long long)sizes[k]);
			else
				total += sizes[k];
		}
		if (s == PRESSO_OK && total != dim)
			s = status_fail(PRESSO_E_FORMAT, "node '%s': Split sizes add up to %lld, not %lld",
					name, (long long)total, (long long)dim);
	} else {
		int64_t parts = attr_int(np, "num_outputs", (int64_t)n_out);
		if (parts != (int64_t)n_out || parts < 1)
			s = status_fail(PRESSO_E_FORMAT, "node '%s': Split num_outputs is not its output count",
					name);
		int64_t chunk = parts > 0 ? (dim + parts - 1) / parts : 0;
		for (size_t k = 0; s == PRESSO_OK && k < n_out; k++) {
			int64_t left = dim - chunk * (int64_t)k;
			sizes[k] = left < 0 ? 0 : left < chunk ? left : chunk;
		}
	}
	int64_t first = 0;
	for (size_t k = 0; s == PRESSO_OK && k < n_out; k++) {
		const char *out = np->output[k];
		if (out && *out) {
			if (map_find(b, out) >= 0) {
				s = status_fail(PRESSO_E_FORMAT, "node '%s': output '%s' is produced twice", name,
						out);
				break;
			}
			char part[300];
			snprintf(part, sizeof part, "%s#%zu", name, k);
			int v = add_value(b, out);
			s = v < 0 ? PRESSO_E_NOMEM
				  : slice_one_axis(b, part, x, &xs, (int)axis, first, sizes[k], 1, v);
		}
		first += sizes[k];
	}
	free(sizes);
	return s;
}

/* --- Equal, Where and Expand of constants ------------------------------------
 * PyTorch writes x.expand(n, -1, -1) (a ViT's class token) as Equal(shape,
 * -1) and Where(..., 1, shape) before the Expand. Over constants all three
 * fold, with numpy broadcasting; a shape entry that follows the batch may
 * pass through Where and compares unequal to any number it cannot be (zero
 * or less). An Expand of a constant to the batch in its first dimension (the
 * token at a dynamic batch) becomes an OP_EXPAND of one copy; to the batch
 * elsewhere it is refused. */

/* out = the broadcast of the n shapes (right-aligned); false if they do not
 * broadcast. */
static bool broadcast_shapes(const struct shape *const *in, int n, struct shape *out)
{
	int r = 0;
	for (int i = 0; i < n; i++)
		r = in[i]->n_dims > r ? in[i]->n_dims : r;
	out->n_dims = r;
	for (int d = 0; d < r; d++) {
		int64_t v = 1;
		for (int i = 0; i < n; i++) {
			int k = d - (r - in[i]->n_dims);
			int64_t e = k >= 0 ? in[i]->dims[k] : 1;
			if (e != 1 && v != 1 && e != v)
				return false;
			if (e != 1)
				v = e;
		}
		out->dims[d] = v;
	}
	return true;
}

/* The element of a tensor of shape s that broadcasts to element o of out. */
static int64_t broadcast_src(const struct shape *s, const struct shape *out, int64_t o)
{
	int64_t dims[GRAPH_MAX_DIMS];
	shape_right_align(s, out->n_dims, dims);
	return shape_broadcast_src(dims, out->dims, out->n_dims, o);
}

static enum presso_status fold_equal_where(struct builder *b, const char *name, const char *op,
					   const int *in, int n_in, int out_v)
{
	bool where = strcmp(op, "Where") == 0;
	const struct value *v[3];
	const struct shape *sh[3];
	if (n_in != (where ? 3 : 2))
		return status_fail(PRESSO_E_FORMAT, "node '%s': %s needs %d inputs", name, op,
				   where ? 3 : 2);
	for (int i = 0; i < n_in; i++) {
		if (in[i] < 0)
			return status_fail(PRESSO_E_FORMAT, "node '%s': %s input %d is empty", name, op, i);
		v[i] = &b->g->values[in[i]];
		sh[i] = &v[i]->shape;
		if (!value_is_const(v[i]) || (!v[i]->idata && !(where && i > 0 && v[i]->data)))
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': %s of a computed tensor is not supported (only of constants: shapes)",
					   name, op);
	}
	if (where && !v[1]->idata != !v[2]->idata)
		return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': Where of integer and float constants",
				   name);
	struct shape os;
	int64_t count;
	if (!broadcast_shapes(sh, n_in, &os))
		return status_fail(PRESSO_E_FORMAT, "node '%s': %s inputs do not broadcast", name, op);
	if (!shape_numel_checked(&os, &count))
		return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': %s output too large", name, op);
	enum presso_status grow = fold_budget(b, name, op, count, sizeof(int64_t));
	if (grow != PRESSO_OK)
		return grow;
	size_t nb = (size_t)(count ? count : 1);
	bool f32 = where && v[1]->data;
	int64_t *l = f32 ? NULL : malloc(sizeof(int64_t) * nb);
	float *f = f32 ? malloc(sizeof(float) * nb) : NULL;
	if (!l && !f)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	for (int64_t o = 0; o < count; o++) {
		int64_t a = v[0]->idata[broadcast_src(sh[0], &os, o)];
		if (where) {
			if (is_sym(a)) {
				free(l);
				free(f);
				return depends_on_batch(name, op, "a condition");
			}
			const struct value *pick = a ? v[1] : v[2];
			int64_t src = broadcast_src(&pick->shape, &os, o);
			if (f)
				f[o] = pick->data[src];
			else
				l[o] = pick->idata[src];
			continue;
		}
		int64_t c = v[1]->idata[broadcast_src(sh[1], &os, o)];
		if (is_sym(a) != is_sym(c) && (is_sym(a) ? c : a) > 0) {
			free(l);
			return depends_on_batch(name, op, "a shape");
		}
		l[o] = a == c;
	}
	return set_const(b, out_v, &os, l, f);
}

/* Expand of a computed tensor (F.normalize's norm expanded to Shape(x)): a
 * Mul by ones of the target shape, whose batch entry, when it is the
 * batch, stays 1 for x's own batch to fill. */
static enum presso_status expand_computed(struct builder *b, const char *name, int x, int s,
					  int out_v)
{
	const struct value *sv = &b->g->values[s];
	int64_t n = sv->idata ? shape_numel(&sv->shape) : -1;
	if (!sv->idata || sv->shape.n_dims != 1 || n < 1 || n > GRAPH_MAX_DIMS)
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "node '%s': Expand of a computed tensor needs a constant shape (of at most %d entries)",
				   name, GRAPH_MAX_DIMS);
	int64_t xd[GRAPH_MAX_DIMS];
	int xr = 0;
	enum presso_status st = prefix_shape(b, x, xd, &xr);
	if (st != PRESSO_OK)
		return st;
	struct shape ones = {.n_dims = (int)n};
	for (int d = 0; d < n; d++) {
		int64_t v = b->g->values[s].idata[d];
		bool batch = d == 0 && v == SYM_DIM(1) && xr == n && xd[0] == SYM_DIM(1);
		if (!batch && (is_sym(v) || v < 0))
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': Expand of a computed tensor to entry %lld of its shape is not supported",
					   name, (long long)v);
		ones.dims[d] = batch ? 1 : v;
	}
	int64_t count;
	if (!shape_numel_checked(&ones, &count))
		return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': Expand output too large", name);
	if ((st = fold_budget(b, name, "Expand", count, sizeof(float))) != PRESSO_OK)
		return st;
	float *one = malloc(sizeof(float) * (size_t)(count ? count : 1));
	if (!one)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	for (int64_t i = 0; i < count; i++)
		one[i] = 1.0f;
	int ov = -1;
	st = add_const_value(b, name, "ones", &ones, one, &ov);
	free(one);
	return st != PRESSO_OK ? st : add_op_node(b, OP_MUL, name, "", x, ov, out_v, NULL);
}

static enum presso_status fold_expand(struct builder *b, const char *name, const int *in, int n_in,
				      int out_v)
{
	if (n_in != 2 || in[1] < 0)
		return status_fail(PRESSO_E_FORMAT, "node '%s': Expand needs an input and a shape", name);
	const struct value *x = &b->g->values[in[0]], *sv = &b->g->values[in[1]];
	if (!value_is_const(x))
		return expand_computed(b, name, in[0], in[1], out_v);
	if (!sv->idata)
		return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': Expand shape must be constant integers",
				   name);
	int64_t n = shape_numel(&sv->shape);
	if (sv->shape.n_dims != 1 || n > GRAPH_MAX_DIMS)
		return status_fail(PRESSO_E_FORMAT, "node '%s': Expand shape must be a list of at most %d entries",
				   name, GRAPH_MAX_DIMS);
	struct shape target = {.n_dims = (int)n};
	bool batch = n > 0 && sv->idata[0] == SYM_DIM(1) && x->shape.n_dims <= n &&
		     (x->shape.n_dims < n || x->shape.dims[0] == 1);
	for (int d = 0; d < n; d++) {
		if (d == 0 && batch) { /* the batch: one copy here, OP_EXPAND below */
			target.dims[0] = 1;
			continue;
		}
		if (is_sym(sv->idata[d]))
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': Expand to a shape that depends on the batch size in dimension %d is not supported",
					   name, d);
		if (sv->idata[d] < 0)
			return status_fail(PRESSO_E_FORMAT, "node '%s': Expand shape entry %lld is negative",
					   name, (long long)sv->idata[d]);
		target.dims[d] = sv->idata[d];
	}
	const struct shape *both[2] = {&x->shape, &target};
	struct shape os;
	int64_t count;
	if (!broadcast_shapes(both, 2, &os))
		return status_fail(PRESSO_E_FORMAT, "node '%s': Expand shape does not broadcast with the input",
				   name);
	if (!shape_numel_checked(&os, &count))
		return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': Expand output too large", name);
	enum presso_status grow =
		fold_budget(b, name, "Expand", count, sizeof(int64_t));
	if (grow != PRESSO_OK)
		return grow;
	size_t nb = (size_t)(count ? count : 1);
	float *f = x->data ? malloc(sizeof(float) * nb) : NULL;
	int64_t *l = x->idata ? malloc(sizeof(int64_t) * nb) : NULL;
	if (!f && !l)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	for (int64_t o = 0; o < count; o++) {
		int64_t src = broadcast_src(&x->shape, &os, o);
		if (f)
			f[o] = x->data[src];
		else
			l[o] = x->idata[src];
	}
	if (!batch)
		return set_const(b, out_v, &os, l, f);
	/* x.expand(n, ...) with n the batch (a ViT's class token at a dynamic
	 * batch): the one copy made above, repeated to the batch of the graph's
	 * input at run time */
	int like = -1;
	for (int i = 0; i < b->g->n_inputs && like < 0; i++) {
		int64_t dims[GRAPH_MAX_DIMS];
		int rank = 0;
		enum presso_status s = prefix_shape(b, b->g->inputs[i], dims, &rank);
		if (s != PRESSO_OK) {
			free(f);
			free(l);
			return s;
		}
		if (rank > 0 && dims[0] == SYM_DIM(1))
			like = b->g->inputs[i];
	}
	if (like < 0 || !f) {
		free(f);
		free(l);
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "node '%s': Expand to the batch of a tensor other than a graph input's is not supported",
				   name);
	}
	char cname[300];
	snprintf(cname, sizeof cname, "%s#one", name);
	int c = add_value(b, cname);
	if (c < 0) {
		free(f);
		return PRESSO_E_NOMEM;
	}
	set_const(b, c, &os, NULL, f);
	return add_op_node(b, OP_EXPAND, name, "", c, like, out_v, NULL);
}

/* A node of fold_only_ops[], or a Cast of a constant: its output becomes a
 * constant, or the model is refused with the reason. */
static enum presso_status fold_only_node(struct builder *b, const Onnx__NodeProto *np,
					 const char *name, const char *op)
{
	int in[GRAPH_MAX_INPUTS + 1];
	int n_in = (int)np->n_input;
	if (n_in < 1 || n_in > 5 || !np->input[0] || !*np->input[0])
		return status_fail(PRESSO_E_FORMAT, "node '%s': %s has %d inputs", name, op, n_in);
	for (int i = 0; i < n_in; i++) {
		in[i] = -1;
		if (!np->input[i] || !*np->input[i])
			continue;
		enum presso_status s = find_input(b, name, op, np->input[i], &in[i]);
		if (s != PRESSO_OK)
			return s;
	}
	int out_v = add_value(b, np->output[0]);
	if (out_v < 0)
		return PRESSO_E_NOMEM;
	if (strcmp(op, "Slice") == 0 && is_batch_zeros(b, in[0]))
		return mark_batch_zeros(b, out_v, b->batch_zeros[in[0]]); /* a stacked LSTM's layer */
	for (int i = 0; i < n_in; i++)
		if (is_batch_zeros(b, in[i]))
			return refuse_batch_zeros(b, in[i], name);
	if (strcmp(op, "Shape") == 0 || strcmp(op, "Size") == 0)
		return fold_shape(b, np, name, op, in[0], out_v);
	if (strcmp(op, "ConstantOfShape") == 0)
		return fold_constant_of_shape(b, np, name, in[0], out_v);
	if (strcmp(op, "Cast") == 0)
		return fold_cast(b, np, name, in[0], out_v);
	if (strcmp(op, "EyeLike") == 0)
		return fold_eyelike(b, np, name, in[0], out_v);
	if (strcmp(op, "Equal") == 0 || strcmp(op, "Where") == 0)
		return fold_equal_where(b, name, op, in, n_in, out_v);
	if (strcmp(op, "Expand") == 0)
		return fold_expand(b, name, in, n_in, out_v);
	if (strcmp(op, "Gather") == 0) {
		if (n_in != 2 || in[1] < 0)
			return status_fail(PRESSO_E_FORMAT, "node '%s': Gather needs data and indices", name);
		return fold_gather(b, np, name, in[0], in[1], out_v);
	}
	return import_slice(b, np, name, in, n_in, out_v);
}

/* Concat of int64 constants (shapes being put together). */
static enum presso_status fold_int_concat(struct builder *b, struct node *n, int out_v)
{
	struct graph *g = b->g;
	struct shape shapes[GRAPH_MAX_INPUTS + 1];
	struct node mini = *n;
	for (int i = 0; i < n->n_inputs; i++) {
		const struct value *v = &g->values[n->inputs[i]];
		if (!v->idata)
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': Concat of float and integer constants", n->name);
		shapes[i] = v->shape;
		mini.inputs[i] = i;
	}
	mini.output = n->n_inputs;
	enum presso_status s = graph_infer_node(g, &mini, shapes, &shapes[mini.output]);
	if (s != PRESSO_OK)
		return s;
	const struct shape *ys = &shapes[mini.output];
	int axis = n->a.axis < 0 ? n->a.axis + ys->n_dims : n->a.axis;
	int64_t outer = 1, inner = 1, count = shape_numel(ys);
	for (int d = 0; d < axis; d++)
		outer *= ys->dims[d];
	for (int d = axis + 1; d < ys->n_dims; d++)
		inner *= ys->dims[d];
	if ((s = fold_budget(b, n->name, "Concat", count, sizeof(int64_t))) != PRESSO_OK)
		return s;
	int64_t *out = malloc(sizeof(int64_t) * (size_t)(count ? count : 1)), *y = out;
	if (!out)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	for (int64_t o = 0; o < outer; o++)
		for (int i = 0; i < n->n_inputs; i++) {
			int64_t len = shapes[i].dims[axis] * inner;
			memcpy(y, g->values[n->inputs[i]].idata + o * len, sizeof(int64_t) * (size_t)len);
			y += len;
		}
	struct shape sh = *ys;
	return set_const(b, out_v, &sh, out, NULL);
}

/* Add, Sub, Mul, Div of int64 constants (shape arithmetic) of one shape or
 * with a scalar, Div truncating toward zero; Neg and Abs of one. */
static enum presso_status fold_int_arith(struct builder *b, struct node *n, int out_v)
{
	struct graph *g = b->g;
	bool unary = n->op == OP_NEG || n->op == OP_ABS;
	const struct value *x = &g->values[n->inputs[0]];
	const struct value *w = unary ? x : &g->values[n->inputs[1]];
	if (!x->idata || !w->idata)
		return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': %s of float and integer constants",
				   n->name, op_name(n->op));
	/* a dimension that follows the batch times a positive constant, or
	 * divided by one that divides it at batch 1, follows the batch too (batch
	 * x heads in PyTorch's attention) */
	if ((has_sym(x) || has_sym(w)) && n->op != OP_MUL && !(n->op == OP_DIV && !has_sym(w)))
		return depends_on_batch(n->name, op_name(n->op), "a shape");
	int64_t nx = shape_numel(&x->shape), nw = shape_numel(&w->shape);
	bool same = x->shape.n_dims == w->shape.n_dims &&
		    memcmp(x->shape.dims, w->shape.dims, sizeof(int64_t) * (size_t)x->shape.n_dims) == 0;
	if (!same && nx != 1 && nw != 1)
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "node '%s': %s of integer constants of different shapes", n->name,
				   op_name(n->op));
	/* the output has the shape of the operand with more elements, or of the
	 * higher rank between two one-element ones */
	const struct value *big = nx > nw || (nx == nw && x->shape.n_dims >= w->shape.n_dims) ? x : w;
	int64_t count = shape_numel(&big->shape);
	enum presso_status st = fold_budget(b, n->name, op_name(n->op), count, sizeof(int64_t));
	if (st != PRESSO_OK)
		return st;
	int64_t *out = malloc(sizeof(int64_t) * (size_t)(count ? count : 1));
	if (!out)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	for (int64_t i = 0; i < count; i++) {
		int64_t a = x->idata[nx == 1 ? 0 : i], c = w->idata[nw == 1 ? 0 : i], r = 0;
		bool ok = true;
		if (n->op == OP_MUL && is_sym(c)) {
			int64_t t = a;
			a = c;
			c = t;
		}
		if (is_sym(a)) {
			int64_t k = a - SYM_BASE, kr = 0;
			if (is_sym(c) || c <= 0 ||
			    (n->op == OP_MUL ? __builtin_mul_overflow(k, c, &kr) || kr > GRAPH_MAX_ELEMS
					     : k % c != 0)) {
				free(out);
				return depends_on_batch(n->name, op_name(n->op), "a shape");
			}
			out[i] = SYM_DIM(n->op == OP_MUL ? kr : k / c);
			continue;
		}
		switch (n->op) {
		case OP_ADD:
			ok = !__builtin_add_overflow(a, c, &r);
			break;
		case OP_SUB:
			ok = !__builtin_sub_overflow(a, c, &r);
			break;
		case OP_MUL:
			ok = !__builtin_mul_overflow(a, c, &r);
			break;
		case OP_NEG:
		case OP_ABS:
			ok = a != INT64_MIN;
			r = !ok ? 0 : n->op == OP_NEG || a < 0 ? -a : a;
			break;
		default:
			ok = c != 0 && !(a == INT64_MIN && c == -1);
			r = ok ? a / c : 0;
			break;
		}
		if (!ok) {
			free(out);
			return status_fail(PRESSO_E_FORMAT, "node '%s': %s of integers overflows or divides by zero",
					   n->name, op_name(n->op));
		}
		out[i] = r;
	}
	struct shape sh = big->shape;
	return set_const(b, out_v, &sh, out, NULL);
}

static enum presso_status constant_node(struct builder *b, const Onnx__NodeProto *np,
					const char *name, int out_v)
{
	struct value *v = &b->g->values[out_v];
	if (np->n_attribute != 1)
		return status_fail(PRESSO_E_FORMAT, "node '%s': Constant needs exactly one value attribute",
				   name);
	const Onnx__AttributeProto *a = np->attribute[0];
	const char *an = a->name ? a->name : "";
	if (strcmp(an, "value") == 0 && a->t) {
		enum presso_status s = tensor_to_value(a->t, b->base_dir, v);
		return s == PRESSO_OK ? s : status_wrap(s, "node '%s' (Constant)", name);
	}
	if (strcmp(an, "value_float") == 0 || strcmp(an, "value_floats") == 0) {
		size_t n = strcmp(an, "value_float") == 0 ? 1 : a->n_floats;
		if (n > (size_t)GRAPH_MAX_ELEMS)
			return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': Constant has more than %lld values",
					   name, (long long)GRAPH_MAX_ELEMS);
		v->data = malloc(sizeof(float) * (n ? n : 1));
		if (!v->data)
			return status_fail(PRESSO_E_NOMEM, "out of memory");
		if (strcmp(an, "value_float") == 0)
			v->data[0] = a->f;
		else
			memcpy(v->data, a->floats, sizeof(float) * n);
		v->shape.n_dims = strcmp(an, "value_float") == 0 ? 0 : 1;
		v->shape.dims[0] = (int64_t)n;
		return PRESSO_OK;
	}
	if (strcmp(an, "value_int") == 0 || strcmp(an, "value_ints") == 0) {
		size_t n = strcmp(an, "value_int") == 0 ? 1 : a->n_ints;
		if (n > (size_t)GRAPH_MAX_ELEMS)
			return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': Constant has more than %lld values",
					   name, (long long)GRAPH_MAX_ELEMS);
		v->idata = malloc(sizeof(int64_t) * (n ? n : 1));
		if (!v->idata)
			return status_fail(PRESSO_E_NOMEM, "out of memory");
		if (strcmp(an, "value_int") == 0)
			v->idata[0] = a->i;
		else
			memcpy(v->idata, a->ints, sizeof(int64_t) * n);
		v->dtype = DTYPE_I64;
		v->shape.n_dims = strcmp(an, "value_int") == 0 ? 0 : 1;
		v->shape.dims[0] = (int64_t)n;
		return PRESSO_OK;
	}
	return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': Constant attribute '%s' is not supported",
			   name, an);
}

/* Whether a node or a graph output reads the value called name; *who then
 * names the first such reader. */
static bool find_reader(const struct builder *b, const char *name, char *who, size_t who_bytes)
{
	const Onnx__GraphProto *gp = b->gp;
	for (size_t i = 0; i < gp->n_node; i++)
		for (size_t k = 0; k < gp->node[i]->n_input; k++)
			if (gp->node[i]->input[k] && strcmp(gp->node[i]->input[k], name) == 0) {
				describe_node(gp->node[i], i, who, who_bytes);
				return true;
			}
	for (size_t i = 0; i < gp->n_output; i++)
		if (gp->output[i]->name && strcmp(gp->output[i]->name, name) == 0) {
			snprintf(who, who_bytes, "graph output %zu", i);
			return true;
		}
	return false;
}

/* InstanceNormalization(x, scale, B) of an [N, C, ...] tensor normalises each
 * (image, channel) over the rest: a LayerNormalization from axis 2 with a
 * scale of 1, then scale and B per channel (a Mul and an Add of [C, 1, ...]
 * constants) unless they are 1 and 0, as in the InstanceNormalization that
 * PyTorch writes for GroupNorm (between two Reshapes, with its affine
 * parameters applied after them). */
static enum presso_status add_const_value(struct builder *b, const char *name, const char *suffix,
					  const struct shape *sh, const float *src, int *v)
{
	char vname[300];
	snprintf(vname, sizeof vname, "%s#%s", name, suffix);
	int64_t count = shape_numel(sh);
	float *data = malloc(sizeof(float) * (size_t)(count ? count : 1));
	if (!data)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	if (count > 0)
		memcpy(data, src, sizeof(float) * (size_t)count);
	*v = add_value(b, vname);
	if (*v < 0) {
		free(data);
		return PRESSO_E_NOMEM;
	}
	return set_const(b, *v, sh, NULL, data);
}

/* A node op(a, c) -> out_v (op(a) for c < 0) named name#suffix (name alone
 * for ""). */
static enum presso_status add_op_node(struct builder *b, enum op_type op, const char *name,
				      const char *suffix, int a, int c, int out_v,
				      const struct node_attrs *attrs)
{
	struct node n = {.op = op, .n_inputs = c >= 0 ? 2 : 1, .output = out_v};
	n.inputs[0] = a;
	n.inputs[1] = c;
	if (attrs)
		n.a = *attrs;
	char nname[300];
	snprintf(nname, sizeof nname, "%s%s%s", name, *suffix ? "#" : "", suffix);
	n.name = strdup(nname);
	if (!n.name)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	b->g->values[out_v].producer = b->g->n_nodes;
	enum presso_status s = add_node(b, &n);
	if (s != PRESSO_OK)
		free(n.name);
	return s;
}

static enum presso_status import_instancenorm(struct builder *b, const Onnx__NodeProto *np,
					      const char *name)
{
	struct graph *g = b->g;
	enum presso_status s;
	for (size_t i = 0; i < np->n_attribute; i++) {
		const char *a = np->attribute[i]->name ? np->attribute[i]->name : "";
		if (strcmp(a, "epsilon") != 0)
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': InstanceNormalization attribute '%s' is not supported",
					   name, a);
	}
	if (np->n_input != 3)
		return status_fail(PRESSO_E_FORMAT, "node '%s': InstanceNormalization needs input, scale and B",
				   name);
	int in[3];
	for (int i = 0; i < 3; i++) {
		in[i] = np->input[i] && *np->input[i] ? map_find(b, np->input[i]) : -1;
		if (in[i] < 0)
			return status_fail(PRESSO_E_FORMAT,
					   "node '%s': InstanceNormalization input %d is missing or not produced by an earlier node",
					   name, i);
	}
	int64_t xd[GRAPH_MAX_DIMS];
	int r = 0;
	if ((s = prefix_shape(b, in[0], xd, &r)) != PRESSO_OK)
		return s;
	const struct value *sc = &g->values[in[1]], *bi = &g->values[in[2]];
	if (r < 3 || is_sym(xd[1]))
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "node '%s': InstanceNormalization of a rank-%d tensor is not supported (it needs [N, C, ...])",
				   name, r);
	int64_t c = xd[1];
	if (!sc->data || !bi->data || shape_numel(&sc->shape) != c || shape_numel(&bi->shape) != c)
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "node '%s': InstanceNormalization scale and B must be constant, %lld values each",
				   name, (long long)c);
	bool affine = false;
	for (int64_t i = 0; i < c; i++)
		affine |= sc->data[i] != 1.0f || bi->data[i] != 0.0f;
	float one = 1.0f;
	struct shape sh1 = {.n_dims = 1, .dims = {1}}, shc = {.n_dims = r - 1};
	shc.dims[0] = c;
	for (int d = 1; d < r - 1; d++)
		shc.dims[d] = 1;
	/* copies of the per-channel parameters: add_value may move the values */
	float *scale = malloc(sizeof(float) * (size_t)c), *bias = malloc(sizeof(float) * (size_t)c);
	if (!scale || !bias) {
		free(scale);
		free(bias);
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	}
	memcpy(scale, sc->data, sizeof(float) * (size_t)c);
	memcpy(bias, bi->data, sizeof(float) * (size_t)c);
	int ones = -1, ln = -1, sv = -1, bv = -1, mv = -1, out = -1;
	struct node_attrs at = {0};
	at.axis = 2;
	at.epsilon = attr_float(np, "epsilon", 1e-5f);
	s = add_const_value(b, name, "one", &sh1, &one, &ones);
	if (s == PRESSO_OK && affine) {
		char nm[300];
		snprintf(nm, sizeof nm, "%s#normalized", name);
		if ((ln = add_value(b, nm)) < 0)
			s = PRESSO_E_NOMEM;
		snprintf(nm, sizeof nm, "%s#scaled", name);
		if (s == PRESSO_OK && (mv = add_value(b, nm)) < 0)
			s = PRESSO_E_NOMEM;
		if (s == PRESSO_OK)
			s = add_const_value(b, name, "scale", &shc, scale, &sv);
		if (s == PRESSO_OK)
			s = add_const_value(b, name, "B", &shc, bias, &bv);
	}
	if (s == PRESSO_OK && (out = add_value(b, np->output[0])) < 0)
		s = PRESSO_E_NOMEM;
	free(scale);
	free(bias);
	if (s != PRESSO_OK)
		return s;
	if (!affine)
		return add_op_node(b, OP_LAYERNORM, name, "", in[0], ones, out, &at);
	if ((s = add_op_node(b, OP_LAYERNORM, name, "", in[0], ones, ln, &at)) == PRESSO_OK &&
	    (s = add_op_node(b, OP_MUL, name, "scale", ln, sv, mv, NULL)) == PRESSO_OK)
		s = add_op_node(b, OP_ADD, name, "B", mv, bv, out, NULL);
	return s;
}

/* --- QuantizeLinear and DequantizeLinear (QDQ models) -----------------------
 * A QDQ model (presso's export, PyTorch's or another tool's) runs in FP32 with
 * its quantization simulated. QuantizeLinear and DequantizeLinear of constants
 * fold (per tensor or per axis); a QuantizeLinear of an activation becomes an
 * OP_FAKEQUANT that rounds to the grid and clamps to the zero point's type
 * (uint8 or int8) and gives back the dequantized value, and every
 * DequantizeLinear reading it, with the same scale and zero point, an
 * Identity. */

/* The ONNX element type of a constant given by an initializer or a Constant
 * node (0 if neither names it). */
static int32_t const_onnx_type(const struct builder *b, const char *name)
{
	const Onnx__GraphProto *gp = b->gp;
	for (size_t i = 0; i < gp->n_initializer; i++)
		if (gp->initializer[i]->name && strcmp(gp->initializer[i]->name, name) == 0)
			return gp->initializer[i]->data_type;
	for (size_t i = 0; i < gp->n_node; i++) {
		const Onnx__NodeProto *np = gp->node[i];
		if (np->op_type && strcmp(np->op_type, "Constant") == 0 && np->n_output == 1 &&
		    strcmp(np->output[0], name) == 0) {
			const Onnx__AttributeProto *a = find_attr(np, "value");
			return a && a->t ? a->t->data_type : 0;
		}
	}
	return 0;
}

/* Scale and zero point (inputs 1 and 2) of a Q/DQ node over a tensor of shape
 * xs (NULL for an activation: per tensor only): n_q entries (1, or xs's
 * dimension axis). */
struct qdq {
	const float *scale;
	const int64_t *zero; /* NULL: 0 */
	int64_t n_q;
	int axis;
	float lo, hi; /* the zero point type's range */
};

static enum presso_status read_qdq(struct builder *b, const Onnx__NodeProto *np, const char *name,
				   const char *op, const struct shape *xs, struct qdq *q)
{
	static const char *const ok[] = {"axis", "saturate", NULL};
	for (size_t i = 0; i < np->n_attribute; i++) {
		const char *a = np->attribute[i]->name ? np->attribute[i]->name : "";
		bool known = false;
		for (const char *const *k = ok; *k; k++)
			known |= strcmp(*k, a) == 0;
		if (!known)
			return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': %s attribute '%s' is not supported",
					   name, op, a);
	}
	if (np->n_input < 2 || np->n_input > 3 || !np->input[1] || !*np->input[1])
		return status_fail(PRESSO_E_FORMAT, "node '%s': %s needs x, a scale and an optional zero point",
				   name, op);
	int sv = map_find(b, np->input[1]);
	int zv = np->n_input > 2 && np->input[2] && *np->input[2] ? map_find(b, np->input[2]) : -1;
	const struct value *s = sv >= 0 ? &b->g->values[sv] : NULL;
	const struct value *z = zv >= 0 ? &b->g->values[zv] : NULL;
	if (!s || !s->data || (np->n_input > 2 && np->input[2] && *np->input[2] && (!z || !z->idata)))
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "node '%s': %s scale and zero point must be constants", name, op);
	q->n_q = shape_numel(&s->shape);
	int64_t ax = attr_int(np, "axis", 1);
	if (q->n_q != 1 && !xs)
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "node '%s': %s of an activation per axis is not supported (per tensor is)",
				   name, op);
	if (q->n_q != 1) {
		ax = ax < 0 ? ax + xs->n_dims : ax;
		if (ax < 0 || ax >= xs->n_dims || xs->dims[ax] != q->n_q)
			return status_fail(PRESSO_E_FORMAT,
					   "node '%s': %s has %lld scales for axis %lld of a tensor of rank %d",
					   name, op, (long long)q->n_q, (long long)ax, xs->n_dims);
	}
	if (z && shape_numel(&z->shape) != q->n_q)
		return status_fail(PRESSO_E_FORMAT, "node '%s': %s zero points and scales differ in count",
				   name, op);
	for (int64_t i = 0; i < q->n_q; i++)
		if (!(s->data[i] > 0.0f) || !isfinite(s->data[i]))
			return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': %s scale %g is not positive",
					   name, op, (double)s->data[i]);
	q->axis = (int)(q->n_q == 1 ? 0 : ax);
	q->scale = s->data;
	q->zero = z ? z->idata : NULL;
	int32_t t = z ? const_onnx_type(b, np->input[2]) : ONNX__TENSOR_PROTO__DATA_TYPE__UINT8;
	if (t == ONNX__TENSOR_PROTO__DATA_TYPE__INT8) {
		q->lo = -128.0f;
		q->hi = 127.0f;
	} else if (t == ONNX__TENSOR_PROTO__DATA_TYPE__UINT8 || (t == 0 && z)) {
		q->lo = 0.0f;
		q->hi = 255.0f;
	} else if (t == ONNX__TENSOR_PROTO__DATA_TYPE__INT32) {
		q->lo = -2147483648.0f;
		q->hi = 2147483520.0f;
	} else {
		return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': %s to %s is not supported (uint8, int8 and int32 are)",
				   name, op, dtype_name(t));
	}
	return PRESSO_OK;
}

/* The quantization entry element o of a tensor of shape xs uses. */
static int64_t qdq_index(const struct qdq *q, const struct shape *xs, int64_t o)
{
	if (q->n_q == 1)
		return 0;
	int64_t inner = 1;
	for (int d = q->axis + 1; d < xs->n_dims; d++)
		inner *= xs->dims[d];
	return (o / inner) % xs->dims[q->axis];
}

static enum presso_status import_qdq(struct builder *b, const Onnx__NodeProto *np, const char *name,
				     const char *op)
{
	struct graph *g = b->g;
	bool quantize = strcmp(op, "QuantizeLinear") == 0;
	int x = np->n_input > 0 && np->input[0] ? map_find(b, np->input[0]) : -1;
	if (x < 0)
		return status_fail(PRESSO_E_FORMAT,
				   "node '%s': %s input is missing or not produced by an earlier node", name,
				   op);
	const struct value *xv = &g->values[x];
	struct qdq q = {0};
	enum presso_status s =
		read_qdq(b, np, name, op, value_is_const(xv) ? &xv->shape : NULL, &q);
	if (s != PRESSO_OK)
		return s;
	xv = &g->values[x];
	if (value_is_const(xv)) { /* fold */
		int64_t n = shape_numel(&xv->shape);
		s = fold_budget(b, name, op, n, quantize ? sizeof(int64_t) : sizeof(float));
		if (s != PRESSO_OK)
			return s;
		size_t nb = (size_t)(n ? n : 1);
		float *f = quantize ? NULL : malloc(sizeof(float) * nb);
		int64_t *l = quantize ? malloc(sizeof(int64_t) * nb) : NULL;
		if (!f && !l)
			return status_fail(PRESSO_E_NOMEM, "out of memory");
		for (int64_t i = 0; i < n; i++) {
			int64_t k = qdq_index(&q, &xv->shape, i);
			double z = q.zero ? (double)q.zero[k] : 0.0;
			if (quantize) {
				double v = xv->data ? (double)xv->data[i] : (double)xv->idata[i];
				double r = nearbyint(v / q.scale[k]) + z;
				l[i] = (int64_t)(r < q.lo ? q.lo : r > q.hi ? q.hi : r);
			} else {
				double v = xv->idata ? (double)xv->idata[i] : (double)xv->data[i];
				f[i] = (float)((v - z) * q.scale[k]);
			}
		}
		struct shape xs = xv->shape; /* add_value may move the values */
		int out_v = add_value(b, np->output[0]);
		if (out_v < 0) {
			free(f);
			free(l);
			return PRESSO_E_NOMEM;
		}
		return set_const(b, out_v, &xs, l, f);
	}
	if (q.hi > 255.0f)
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "node '%s': %s of an activation to int32 is not supported (uint8 and int8 are)",
				   name, op);
	float z = q.zero ? (float)q.zero[0] : 0.0f;
	int producer = xv->producer;
	int out_v = add_value(b, np->output[0]);
	if (out_v < 0)
		return PRESSO_E_NOMEM;
	if (!quantize) {
		/* the value of a fake quantization, on the same grid */
		const struct node *p = producer >= 0 ? &g->nodes[producer] : NULL;
		if (!p || p->op != OP_FAKEQUANT || p->a.alpha != q.scale[0] || p->a.beta != z)
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': DequantizeLinear of an activation must read a QuantizeLinear with its scale and zero point",
					   name);
		return add_op_node(b, OP_IDENTITY, name, "", x, -1, out_v, NULL);
	}
	char reader[300];
	for (size_t i = 0; i < b->gp->n_node; i++) {
		const Onnx__NodeProto *r = b->gp->node[i];
		for (size_t k = 0; k < r->n_input; k++)
			if (r->input[k] && strcmp(r->input[k], np->output[0]) == 0 &&
			    (k != 0 || !r->op_type || strcmp(r->op_type, "DequantizeLinear") != 0)) {
				describe_node(r, i, reader, sizeof reader);
				return status_fail(PRESSO_E_UNSUPPORTED,
						   "node '%s': QuantizeLinear output '%s' is read by %s; presso runs quantized values only through DequantizeLinear",
						   name, np->output[0], reader);
			}
	}
	struct node_attrs at = {.alpha = q.scale[0], .beta = z, .clip_min = q.lo, .clip_max = q.hi};
	return add_op_node(b, OP_FAKEQUANT, name, "", x, -1, out_v, &at);
}

/* --- 1-D spatial ops as 2-D ones --------------------------------------------
 * Conv1d, ConvTranspose1d, MaxPool1d and AvgPool1d run as their 2-D forms
 * over [N, C, 1, L]:
 * the input gets an Unsqueeze at axis 2, the kernel a height of 1, and the
 * output a Squeeze at axis 2, so the engines, the training engine and the
 * file formats see only 2-D convolutions. Ops that commute with that Squeeze
 * (element-wise functions, BatchNormalization, Add/Sub/Mul/Div/Sum, PRelu,
 * Concat, GlobalAveragePool) take the 4-D value when every runtime input has
 * one; their constants of rank 2 or more gain the same unit dimension before
 * their last. A chain of 1-D layers thus stays 4-D from its first Unsqueeze to
 * its last Squeeze, and the Squeezes in between have no reader (compact()
 * drops them). b->lifted pairs each such 3-D value with its 4-D twin. */

#define LIFT_MAX_ATTRS 16

static int lifted_of(const struct builder *b, int v3)
{
	for (int i = b->n_lifted - 1; i >= 0; i--)
		if (b->lifted[i].v3 == v3)
			return b->lifted[i].v4;
	return -1;
}

static enum presso_status note_lifted(struct builder *b, int v3, int v4)
{
	if (b->n_lifted == b->cap_lifted) {
		int cap = b->cap_lifted ? 2 * b->cap_lifted : 16;
		struct lifted *nl = realloc(b->lifted, sizeof *nl * (size_t)cap);
		if (!nl)
			return status_fail(PRESSO_E_NOMEM, "out of memory");
		b->lifted = nl;
		b->cap_lifted = cap;
	}
	b->lifted[b->n_lifted++] = (struct lifted){v3, v4};
	return PRESSO_OK;
}

/* An ints attribute of exactly `count` entries, or NULL. */
static const Onnx__AttributeProto *ints_attr(const Onnx__NodeProto *np, const char *name,
					     size_t count)
{
	const Onnx__AttributeProto *a = find_attr(np, name);
	return a && a->n_ints == count ? a : NULL;
}

static bool is_spatial_1d(const struct builder *b, const Onnx__NodeProto *np, enum op_type op)
{
	if (op != OP_CONV && op != OP_CONVTRANSPOSE && op != OP_MAXPOOL && op != OP_AVGPOOL)
		return false;
	int x = np->input[0] ? map_find(b, np->input[0]) : -1;
	if (x < 0 || value_is_const(&b->g->values[x]))
		return false; /* folded, or refused, as it is */
	if (find_attr(np, "kernel_shape"))
		return ints_attr(np, "kernel_shape", 1) != NULL;
	if ((op != OP_CONV && op != OP_CONVTRANSPOSE) || np->n_input < 2 || !np->input[1])
		return false;
	int w = map_find(b, np->input[1]);
	return w >= 0 && value_is_const(&b->g->values[w]) && b->g->values[w].shape.n_dims == 3;
}

/* Ops f with f(Squeeze(x)) = Squeeze(f(x)) for a Squeeze at axis 2. */
static bool commutes_with_squeeze(enum op_type op)
{
	enum f32_unary f;
	switch (op) {
	case OP_RELU: case OP_CLIP: case OP_BATCHNORM: case OP_GLOBALAVGPOOL:
	case OP_ADD: case OP_SUB: case OP_MUL: case OP_DIV: case OP_SUM: case OP_PRELU:
	case OP_CONCAT: case OP_IDENTITY:
		return true;
	default:
		return engine_unary_fn(op, &f); /* every element-wise function */
	}
}

/* Whether np runs over the 4-D twins: a 1-D spatial op, or an op that
 * commutes with the Squeeze and whose runtime inputs all have twins. */
static bool lifts(const struct builder *b, const Onnx__NodeProto *np, enum op_type op)
{
	if (np->n_attribute > LIFT_MAX_ATTRS || np->n_input > GRAPH_MAX_INPUTS ||
	    np->n_input == 0)
		return false;
	if (is_spatial_1d(b, np, op))
		return true;
	if (!commutes_with_squeeze(op))
		return false;
	bool any = false;
	for (size_t i = 0; i < np->n_input; i++) {
		if (!np->input[i] || !*np->input[i])
			continue;
		int v = map_find(b, np->input[i]);
		if (v < 0)
			return false;
		const struct value *val = &b->g->values[v];
		if (lifted_of(b, v) >= 0)
			any = true;
		else if (!value_is_const(val) || (val->shape.n_dims >= 2 && !val->data))
			return false;
	}
	return any;
}

/* The 4-D twin of input value v of node `name`: its lifted twin, an
 * Unsqueeze of a runtime value, a float constant of rank 2 or more with a
 * unit dimension before its last, or v itself. */
static enum presso_status lift_input(struct builder *b, const char *name, int v, int *v4)
{
	struct graph *g = b->g;
	*v4 = lifted_of(b, v);
	if (*v4 >= 0)
		return PRESSO_OK;
	if (value_is_const(&g->values[v]) && g->values[v].shape.n_dims < 2) {
		*v4 = v;
		return PRESSO_OK;
	}
	if (value_is_const(&g->values[v])) {
		struct shape sh = g->values[v].shape;
		if (!g->values[v].data)
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': input '%s' is an integer constant where a float tensor is expected",
					   name, g->values[v].name);
		if (sh.n_dims >= GRAPH_MAX_DIMS)
			return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': input '%s' has too many dimensions",
					   name, g->values[v].name);
		sh.dims[sh.n_dims] = sh.dims[sh.n_dims - 1];
		sh.dims[sh.n_dims - 1] = 1;
		sh.n_dims++;
		char base[300];
		snprintf(base, sizeof base, "%s", g->values[v].name);
		return add_const_value(b, base, "2d", &sh, g->values[v].data, v4);
	}
	if ((*v4 = add_derived_value(b, g->values[v].name, "2d")) < 0)
		return PRESSO_E_NOMEM;
	struct node_attrs at = {.n_ints = 1, .ints = {2}};
	enum presso_status s = add_op_node(b, OP_UNSQUEEZE, name, "unsqueeze", v, -1, *v4, &at);
	return s == PRESSO_OK ? note_lifted(b, v, *v4) : s;
}

static enum presso_status import_node(struct builder *b, const Onnx__NodeProto *np, int index);

/* np over the 4-D twins of its inputs, then a Squeeze to its own output. */
static enum presso_status import_lifted(struct builder *b, const Onnx__NodeProto *np,
					enum op_type op, const char *name, int index)
{
	struct graph *g = b->g;
	enum presso_status s;
	Onnx__NodeProto n2 = *np;
	char *in2[GRAPH_MAX_INPUTS];
	for (size_t i = 0; i < np->n_input; i++) {
		in2[i] = np->input[i];
		if (!np->input[i] || !*np->input[i])
			continue;
		int v = map_find(b, np->input[i]), v4;
		if (v < 0)
			return status_fail(PRESSO_E_FORMAT,
					   "node '%s': input '%s' is not produced by any earlier node, initializer or graph input",
					   name, np->input[i]);
		if ((s = lift_input(b, name, v, &v4)) != PRESSO_OK)
			return s;
		in2[i] = g->values[v4].name;
	}
	n2.input = in2;
	/* windows gain a height of 1 (pads: top 0, left, bottom 0, right); a
	 * Concat axis after the channels moves one on */
	Onnx__AttributeProto at2[LIFT_MAX_ATTRS], *atp[LIFT_MAX_ATTRS];
	int64_t ints[LIFT_MAX_ATTRS][4];
	for (size_t i = 0; i < np->n_attribute; i++) {
		const Onnx__AttributeProto *a = np->attribute[i];
		at2[i] = *a;
		atp[i] = &at2[i];
		const char *an = a->name ? a->name : "";
		bool window = op != OP_CONCAT &&
			      (strcmp(an, "kernel_shape") == 0 || strcmp(an, "strides") == 0 ||
			       strcmp(an, "dilations") == 0 || strcmp(an, "output_padding") == 0 ||
			       strcmp(an, "output_shape") == 0);
		if (window && a->n_ints == 1) {
			ints[i][0] = strcmp(an, "output_padding") == 0 ? 0 : 1;
			ints[i][1] = a->ints[0];
			at2[i].ints = ints[i];
			at2[i].n_ints = 2;
		} else if (op != OP_CONCAT && strcmp(an, "pads") == 0 && a->n_ints == 2) {
			ints[i][0] = 0;
			ints[i][1] = a->ints[0];
			ints[i][2] = 0;
			ints[i][3] = a->ints[1];
			at2[i].ints = ints[i];
			at2[i].n_ints = 4;
		} else if (op == OP_CONCAT && strcmp(an, "axis") == 0 && a->has_i) {
			int64_t ax = a->i < 0 ? a->i + 3 : a->i;
			at2[i].i = ax >= 2 ? ax + 1 : ax;
		}
	}
	n2.attribute = atp;
	char out4[512];
	snprintf(out4, sizeof out4, "%s#2d", np->output[0]);
	for (int k = 1; map_find(b, out4) >= 0; k++)
		snprintf(out4, sizeof out4, "%s#2d%d", np->output[0], k);
	char *outs[1] = {out4};
	n2.output = outs;
	n2.n_output = 1;
	char name2[300];
	snprintf(name2, sizeof name2, "%s", name);
	n2.name = name2;
	b->lifting = true;
	s = import_node(b, &n2, index);
	b->lifting = false;
	if (s != PRESSO_OK)
		return s;
	int y4 = map_find(b, out4), y = add_value(b, np->output[0]);
	if (y < 0)
		return PRESSO_E_NOMEM;
	struct node_attrs at = {.n_ints = 1, .ints = {2}};
	if ((s = add_op_node(b, OP_SQUEEZE, name, "squeeze", y4, -1, y, &at)) != PRESSO_OK)
		return s;
	return note_lifted(b, y, y4);
}

static bool g_value_is_int(const struct builder *b, int v)
{
	return b->g->values[v].idata != NULL;
}

/* Max or Min of more than two inputs: a chain of two-input nodes,
 * op(op(a, b), c), ..., named name#1, name#2, ... and name for the last. */
static enum presso_status import_variadic(struct builder *b, const Onnx__NodeProto *np,
					  const char *name, enum op_type op)
{
	if (np->n_input > GRAPH_MAX_INPUTS || np->n_attribute > 0)
		return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': %s with %zu inputs or attributes is not supported",
				   name, op_name(op), np->n_input);
	int acc = -1;
	for (size_t i = 0; i < np->n_input; i++) {
		int v = np->input[i] && *np->input[i] ? map_find(b, np->input[i]) : -1;
		if (v < 0)
			return status_fail(PRESSO_E_FORMAT,
					   "node '%s': %s input %zu is missing or not produced by an earlier node",
					   name, op_name(op), i);
		if (g_value_is_int(b, v))
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': %s input '%s' is an integer tensor (only float32 is supported)",
					   name, op_name(op), np->input[i]);
		if (i == 0) {
			acc = v;
			continue;
		}
		bool last = i + 1 == np->n_input;
		char suffix[24];
		snprintf(suffix, sizeof suffix, "%zu", i);
		int out = last ? add_value(b, np->output[0]) : add_derived_value(b, name, suffix);
		if (out < 0)
			return PRESSO_E_NOMEM;
		enum presso_status s = add_op_node(b, op, name, last ? "" : suffix, acc, v, out, NULL);
		if (s != PRESSO_OK)
			return s;
		acc = out;
	}
	return PRESSO_OK;
}

/* --- RNN, GRU, LSTM -------------------------------------------------------------
 * A node per output the model names: Y (every step's hidden state), Y_h
 * (each direction's last) or Y_c (LSTM's last cell state); those nothing
 * reads are dropped with the other dead nodes, so the usual model, which
 * reads one of them, runs the recurrence once. The default activations only;
 * clip, input_forget and sequence_lens shorter than the sequence are
 * refused. */

/* Whether string attribute `name` lists only `want` (per direction, in any
 * letter case), or is absent. */
static bool rnn_default_activations(const Onnx__NodeProto *np, const char *const *want,
				    int per_dir, int dirs)
{
	const Onnx__AttributeProto *at = find_attr(np, "activations");
	if (!at)
		return true;
	if (at->n_strings != (size_t)(per_dir * dirs))
		return false;
	for (size_t i = 0; i < at->n_strings; i++) {
		const char *w = want[i % (size_t)per_dir];
		if (at->strings[i].len != strlen(w) ||
		    strncasecmp((const char *)at->strings[i].data, w, strlen(w)) != 0)
			return false;
	}
	return true;
}

/* The input projection X W^T of every direction as a MatMul by the constant
 * [in, dirs * gates * hidden] (W transposed, the directions side by side)
 * before the recurrent node, which then reads the projection and holds R
 * transposed (rnn_projected): a layer that policies quantize, prune and
 * factor like any other. A W that is each direction's identity over X
 * (presso's export of such a layer) means X is the projection already. A W
 * or R of the wrong shape is left to shape inference, which names it. */
static enum presso_status rnn_project(struct builder *b, const char *name, struct node *n)
{
	struct graph *g = b->g;
	const struct value *w = &g->values[n->inputs[RNN_IN_W]];
	const struct value *rv = &g->values[n->inputs[RNN_IN_R]];
	int64_t dirs = n->a.rnn_direction == 2 ? 2 : 1, h = n->a.rnn_hidden;
	int64_t gh = (n->op == OP_LSTM ? 4 : n->op == OP_GRU ? 3 : 1) * h;
	if (w->shape.n_dims != 3 || w->shape.dims[0] != dirs || w->shape.dims[1] != gh ||
	    w->shape.dims[2] < 1 || !rv->data || rv->shape.n_dims != 3 ||
	    rv->shape.dims[0] != dirs || rv->shape.dims[1] != gh || rv->shape.dims[2] != h)
		return PRESSO_OK;
	int64_t in = w->shape.dims[2];
	/* R^T per direction, [dirs, hidden, gates * hidden]: a step's H' R^T
	 * then reads its rows in order (one batch row: an axpy per unit) */
	struct shape rts = {.n_dims = 3, .dims = {dirs, h, gh}};
	struct shape ts = {.n_dims = 2, .dims = {in, dirs * gh}};
	bool eye = in == dirs * gh;
	for (int64_t d = 0; eye && d < dirs; d++)
		for (int64_t k = 0; eye && k < gh; k++)
			for (int64_t i = 0; eye && i < in; i++)
				eye = w->data[(d * gh + k) * in + i] == (i == d * gh + k ? 1.0f : 0.0f);
	float *rt = malloc(sizeof(float) * (size_t)(dirs * h * gh));
	float *t = eye ? NULL : malloc(sizeof(float) * (size_t)(in * dirs * gh));
	if (!rt || (!eye && !t)) {
		free(rt);
		free(t);
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	}
	for (int64_t d = 0; d < dirs; d++)
		for (int64_t k = 0; k < gh; k++) {
			for (int64_t j = 0; j < h; j++)
				rt[(d * h + j) * gh + k] = rv->data[(d * gh + k) * h + j];
			for (int64_t i = 0; t && i < in; i++)
				t[i * dirs * gh + d * gh + k] = w->data[(d * gh + k) * in + i];
		}
	int rt_v, wt = -1, xw = -1;
	enum presso_status s = add_const_value(b, name, "R_t", &rts, rt, &rt_v);
	if (s == PRESSO_OK && t)
		s = add_const_value(b, name, "W_proj", &ts, t, &wt);
	free(rt);
	free(t);
	if (s == PRESSO_OK && !eye && (xw = add_derived_value(b, name, "proj")) < 0)
		s = PRESSO_E_NOMEM;
	if (s == PRESSO_OK && !eye)
		s = add_op_node(b, OP_MATMUL, name, "proj", n->inputs[RNN_IN_X], wt, xw, NULL);
	if (s != PRESSO_OK)
		return s;
	/* eye: presso's export of a projected layer, whose X is X W^T already */
	if (!eye)
		n->inputs[RNN_IN_X] = xw;
	n->inputs[RNN_IN_W] = -1;
	n->inputs[RNN_IN_R] = rt_v;
	n->a.rnn_projected = true;
	return PRESSO_OK;
}

static enum presso_status import_rnn(struct builder *b, const Onnx__NodeProto *np,
				     const char *name, enum op_type op)
{
	struct graph *g = b->g;
	const char *opn = op_name(op);
	struct node n = {.op = op, .n_inputs = RNN_N_IN};
	n.name = (char *)name;
	static const char *const ok[] = {"activation_alpha", "activation_beta", "activations",
					 "clip", "direction", "hidden_size", "input_forget",
					 "layout", "linear_before_reset", NULL};
	enum presso_status s = check_attrs(&n, np, ok);
	if (s != PRESSO_OK)
		return s;
	static const char *const dirs_names[] = {"forward", "reverse", "bidirectional", NULL};
	int direction = attr_choice(np, "direction", dirs_names, 0);
	if (direction < 0)
		return bad_attr(&n, "direction", "is none of forward, reverse, bidirectional");
	int dirs = direction == 2 ? 2 : 1;
	static const char *const act_lstm[] = {"Sigmoid", "Tanh", "Tanh"};
	static const char *const act_rnn[] = {"Tanh"};
	int per_dir = op == OP_LSTM ? 3 : op == OP_GRU ? 2 : 1;
	if (!rnn_default_activations(np, op == OP_RNN ? act_rnn : act_lstm, per_dir, dirs))
		return bad_attr(&n, "activations", op == OP_RNN ? "other than Tanh are not supported"
							       : "other than the default Sigmoid and Tanh are not supported");
	if (find_attr(np, "clip"))
		return bad_attr(&n, "clip", "(clipping the gates) is not supported");
	if (attr_int(np, "input_forget", 0) != 0)
		return bad_attr(&n, "input_forget", "is not supported");
	if (op != OP_LSTM && find_attr(np, "input_forget"))
		return bad_attr(&n, "input_forget", "is LSTM's");
	if (op != OP_GRU && find_attr(np, "linear_before_reset"))
		return bad_attr(&n, "linear_before_reset", "is GRU's");
	int64_t layout = attr_int(np, "layout", 0);
	if (layout != 0 && layout != 1)
		return bad_attr(&n, "layout", "must be 0 or 1");
	n.a.rnn_direction = (uint8_t)direction;
	n.a.rnn_batch_first = layout == 1;
	n.a.rnn_lbr = attr_int(np, "linear_before_reset", 0) != 0;
	size_t max_in = op == OP_LSTM ? 8 : 6;
	if (np->n_input < 3 || np->n_input > max_in)
		return status_fail(PRESSO_E_FORMAT, "node '%s': %s has %zu inputs; it takes 3 to %zu",
				   name, opn, np->n_input, max_in);
	/* ONNX inputs X W R B sequence_lens initial_h initial_c P -> node slots */
	static const int slot[8] = {RNN_IN_X, RNN_IN_W, RNN_IN_R, RNN_IN_B, -1,
				    RNN_IN_H0, RNN_IN_C0, RNN_IN_P};
	int seq_lens = -1;
	for (int k = 0; k < RNN_N_IN; k++)
		n.inputs[k] = -1;
	for (size_t i = 0; i < np->n_input; i++) {
		const char *in = np->input[i];
		if (!in || !*in) {
			if (i < 3)
				return status_fail(PRESSO_E_FORMAT, "node '%s': %s input %zu is empty, but the op requires it",
						   name, opn, i);
			continue;
		}
		int v;
		if ((s = find_input(b, name, opn, in, &v)) != PRESSO_OK)
			return s;
		const struct value *val = &g->values[v];
		if (i == 4) {
			seq_lens = v;
			continue;
		}
		if ((i == 5 || i == 6) && is_batch_zeros(b, v))
			continue; /* zero initial states: as absent */
		bool must_const = i == 1 || i == 2 || i == 3 || i == 7;
		if (must_const && !val->data)
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': %s input '%s' must be a float32 constant (an initializer)",
					   name, opn, in);
		if (i == 0 && value_is_const(val))
			return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': %s of a constant input is not supported",
					   name, opn);
		if (val->idata)
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': %s input '%s' is an integer tensor (only float32 is supported)",
					   name, opn, in);
		n.inputs[slot[i]] = v;
	}
	if (seq_lens >= 0) {
		int64_t xd[GRAPH_MAX_DIMS];
		int xr;
		if ((s = prefix_shape(b, n.inputs[RNN_IN_X], xd, &xr)) != PRESSO_OK)
			return status_wrap(s, "node '%s' (%s)", name, opn);
		int64_t seq = xr == 3 ? xd[layout == 1 ? 1 : 0] : -1;
		const struct value *sl = &g->values[seq_lens];
		bool full = sl->idata != NULL && !is_sym(seq) && seq >= 0;
		for (int64_t i = 0; full && i < shape_numel(&sl->shape); i++)
			full = sl->idata[i] == seq;
		if (!full)
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': %s sequence_lens must be a constant equal to the (fixed) sequence length for every sequence; shorter sequences are not supported",
					   name, opn);
	}
	const struct value *r = &g->values[n.inputs[RNN_IN_R]];
	int64_t hidden = attr_int(np, "hidden_size", r->shape.n_dims == 3 ? r->shape.dims[2] : 0);
	if (hidden < 1 || hidden > INT32_MAX)
		return bad_attr(&n, "hidden_size", "must be a positive size");
	n.a.rnn_hidden = (int)hidden;
	if ((s = rnn_project(b, name, &n)) != PRESSO_OK)
		return s;
	if (np->n_output > (op == OP_LSTM ? 3u : 2u))
		return status_fail(PRESSO_E_FORMAT, "node '%s': %s has %zu outputs", name, opn, np->n_output);
	static const char *const tags[] = {"", "#Y_h", "#Y_c"};
	int made = 0;
	for (size_t i = 0; i < np->n_output; i++) {
		if (!np->output[i] || !*np->output[i])
			continue;
		if (map_find(b, np->output[i]) >= 0)
			return status_fail(PRESSO_E_FORMAT, "node '%s': output '%s' is produced twice",
					   name, np->output[i]);
		int v = add_value(b, np->output[i]);
		if (v < 0)
			return PRESSO_E_NOMEM;
		struct node o = n;
		char oname[300];
		snprintf(oname, sizeof oname, "%s%s", name, made ? tags[i] : "");
		if (!(o.name = strdup(oname)))
			return status_fail(PRESSO_E_NOMEM, "out of memory");
		o.a.rnn_output = (uint8_t)i;
		o.output = v;
		g->values[v].producer = g->n_nodes;
		if ((s = add_node(b, &o)) != PRESSO_OK) {
			free(o.name);
			return s;
		}
		made++;
		b->n_rnn++;
	}
	if (!made)
		return status_fail(PRESSO_E_FORMAT, "node '%s': %s has no output", name, opn);
	return PRESSO_OK;
}

static enum presso_status import_node(struct builder *b, const Onnx__NodeProto *np, int index)
{
	struct graph *g = b->g;
	const char *op = np->op_type ? np->op_type : "";
	char name[256];
	if (np->name && *np->name)
		snprintf(name, sizeof name, "%s", np->name);
	else if (np->n_output && np->output[0] && *np->output[0])
		snprintf(name, sizeof name, "%s", np->output[0]);
	else
		snprintf(name, sizeof name, "%s_%d", op, index);
	if (np->domain && *np->domain && strcmp(np->domain, "ai.onnx") != 0)
		return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': op %s of domain '%s' is not supported",
				   name, op, np->domain);
	if (strcmp(op, "Split") == 0)
		return import_split(b, np, name);
	if (strcmp(op, "LSTM") == 0 || strcmp(op, "GRU") == 0 || strcmp(op, "RNN") == 0)
		return import_rnn(b, np, name,
				  op[0] == 'L' ? OP_LSTM : op[0] == 'G' ? OP_GRU : OP_RNN);
	if (np->n_output < 1 || !np->output[0] || !*np->output[0])
		return status_fail(PRESSO_E_FORMAT, "node '%s': %s has no output", name, op);
	for (size_t i = 1; i < np->n_output; i++) {
		if (!np->output[i] || !*np->output[i])
			continue;
		/* Dropout's mask, LayerNormalization's mean and inverse deviation:
		 * fine while nothing reads them */
		bool optional = (strcmp(op, "Dropout") == 0 && i == 1) ||
				(strcmp(op, "LayerNormalization") == 0 && i <= 2);
		char reader[300];
		if (!optional)
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': %s output %zu ('%s') is not supported (only the first output)",
					   name, op, i, np->output[i]);
		if (find_reader(b, np->output[i], reader, sizeof reader))
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': %s output %zu ('%s') is read by %s; only the first output is supported",
					   name, op, i, np->output[i], reader);
	}
	if (map_find(b, np->output[0]) >= 0)
		return status_fail(PRESSO_E_FORMAT, "node '%s': output '%s' is produced twice", name,
				   np->output[0]);
	if (strcmp(op, "Constant") == 0) {
		int v = add_value(b, np->output[0]);
		return v < 0 ? PRESSO_E_NOMEM : constant_node(b, np, name, v);
	}
	if (strcmp(op, "InstanceNormalization") == 0)
		return import_instancenorm(b, np, name);
	if (strcmp(op, "QuantizeLinear") == 0 || strcmp(op, "DequantizeLinear") == 0)
		return import_qdq(b, np, name, op);
	if ((strcmp(op, "Max") == 0 || strcmp(op, "Min") == 0) && np->n_input > 2)
		return import_variadic(b, np, name, strcmp(op, "Max") == 0 ? OP_MAX : OP_MIN);
	if (is_fold_only(op) || (strcmp(op, "Cast") == 0 && np->n_input == 1 && np->input[0] &&
				 map_find(b, np->input[0]) >= 0 &&
				 value_is_const(&g->values[map_find(b, np->input[0])])))
		return fold_only_node(b, np, name, op);
	struct node n = {0};
	bool known = false;
	for (size_t i = 0; i < sizeof op_names / sizeof op_names[0]; i++)
		if (strcmp(op_names[i].onnx, op) == 0) {
			n.op = op_names[i].op;
			known = true;
		}
	if (!known)
		return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': op %s is not supported", name, op);
	if (!b->lifting && lifts(b, np, n.op))
		return import_lifted(b, np, n.op, name, index);
	if (np->n_input < (size_t)min_inputs(n.op))
		return status_fail(PRESSO_E_FORMAT, "node '%s': %s has %zu inputs; it needs at least %d",
				   name, op, np->n_input, min_inputs(n.op));
	if (np->n_input > (size_t)max_inputs(n.op))
		return status_fail(max_inputs(n.op) == GRAPH_MAX_INPUTS ? PRESSO_E_UNSUPPORTED
									: PRESSO_E_FORMAT,
				   "node '%s': %s has %zu inputs; presso takes at most %d", name, op,
				   np->n_input, max_inputs(n.op));
	n.n_inputs = (int)np->n_input;
	bool all_const = true, any_int = false;
	for (size_t i = 0; i < np->n_input; i++) {
		const char *in = np->input[i];
		if (!in || !*in) {
			if (i == 0)
				return status_fail(PRESSO_E_FORMAT, "node '%s': %s has no data input", name, op);
			/* an empty name marks an omitted optional input */
			if ((int)i < min_inputs(n.op) || inputs_all_required(n.op))
				return status_fail(PRESSO_E_FORMAT,
						   "node '%s': %s input %zu is empty, but the op requires it",
						   name, op, i);
			n.inputs[i] = -1;
			continue;
		}
		int v;
		enum presso_status fs = find_input(b, name, op, in, &v);
		if (fs != PRESSO_OK)
			return fs;
		if (is_batch_zeros(b, v))
			return refuse_batch_zeros(b, v, name);
		n.inputs[i] = v;
	}
	n.name = strdup(name);
	if (!n.name)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	enum presso_status s = read_attrs(b, &n, np, op);
	for (int i = 0; s == PRESSO_OK && i < n.n_inputs; i++) {
		const struct value *v = input_value(b, &n, i);
		if (!v)
			continue;
		if (!value_is_const(v))
			all_const = false;
		else if (v->idata)
			any_int = true;
	}
	int out_v = s == PRESSO_OK ? add_value(b, np->output[0]) : -1;
	if (s == PRESSO_OK && out_v < 0)
		s = PRESSO_E_NOMEM;
	if (s == PRESSO_OK && all_const) {
		bool shape_only = n.op == OP_RESHAPE || n.op == OP_FLATTEN || n.op == OP_SQUEEZE ||
				  n.op == OP_UNSQUEEZE || n.op == OP_IDENTITY;
		if (any_int && shape_only && n.n_inputs == 1)
			s = fold_int_node(b, &n, out_v);
		else if (any_int && n.op == OP_CONCAT)
			s = fold_int_concat(b, &n, out_v);
		else if (any_int && (n.op == OP_ADD || n.op == OP_SUB || n.op == OP_MUL ||
				     n.op == OP_DIV || n.op == OP_NEG || n.op == OP_ABS))
			s = fold_int_arith(b, &n, out_v);
		else if (any_int)
			s = status_fail(PRESSO_E_UNSUPPORTED,
					"node '%s': %s on integer tensors is not supported", name, op);
		else
			s = fold_node(b, &n, out_v);
		free(n.name);
		return s;
	}
	if (s == PRESSO_OK) {
		for (int i = 0; i < n.n_inputs; i++) {
			const struct value *v = input_value(b, &n, i);
			if (v && v->idata)
				s = status_fail(PRESSO_E_UNSUPPORTED,
						"node '%s': %s input '%s' is an integer tensor (only float32 is supported)",
						name, op, v->name);
		}
	}
	if (s != PRESSO_OK) {
		free(n.name);
		return s;
	}
	n.output = out_v;
	g->values[out_v].producer = g->n_nodes;
	s = add_node(b, &n);
	if (s != PRESSO_OK)
		free(n.name);
	return s;
}

/* --- graph inputs and outputs -------------------------------------------- */

static enum presso_status import_input(struct builder *b, const Onnx__ValueInfoProto *vi)
{
	struct graph *g = b->g;
	const char *name = vi->name ? vi->name : "";
	if (map_find(b, name) >= 0)
		return PRESSO_OK; /* an initializer listed as input (older exporters) */
	const Onnx__TypeProto *tp = vi->type;
	if (!tp || tp->value_case != ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE || !tp->tensor_type)
		return status_fail(PRESSO_E_UNSUPPORTED, "graph input '%s': only tensor inputs are supported",
				   name);
	const Onnx__TypeProto__Tensor *tt = tp->tensor_type;
	if (tt->elem_type != ONNX__TENSOR_PROTO__DATA_TYPE__FLOAT)
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "graph input '%s': data type %s is not supported (float32 only)", name,
				   dtype_name(tt->elem_type));
	if (!tt->shape)
		return status_fail(PRESSO_E_UNSUPPORTED, "graph input '%s' has no shape", name);
	if (tt->shape->n_dim > GRAPH_MAX_DIMS)
		return status_fail(PRESSO_E_UNSUPPORTED, "graph input '%s': rank %zu exceeds %d", name,
				   tt->shape->n_dim, GRAPH_MAX_DIMS);
	int v = add_value(b, name);
	if (v < 0)
		return PRESSO_E_NOMEM;
	struct value *val = &g->values[v];
	val->shape.n_dims = (int)tt->shape->n_dim;
	for (size_t i = 0; i < tt->shape->n_dim; i++) {
		const Onnx__TensorShapeProto__Dimension *d = tt->shape->dim[i];
		bool fixed = d->value_case == ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
		if (i == 0 && (!fixed || d->dim_value == 1)) {
			val->shape.dims[0] = 1;
			val->batched = true; /* confirmed or withdrawn once shapes are inferred */
			continue;
		}
		if (!fixed || d->dim_value < 1)
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "graph input '%s': dimension %zu is symbolic (only the batch dimension may be)",
					   name, i);
		val->shape.dims[i] = d->dim_value;
	}
	int64_t numel;
	if (!shape_numel_checked(&val->shape, &numel))
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "graph input '%s': more than %lld elements (the most a tensor may have)",
				   name, (long long)GRAPH_MAX_ELEMS);
	int *ins = realloc(g->inputs, sizeof(int) * (size_t)(g->n_inputs + 1));
	if (!ins)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	g->inputs = ins;
	g->inputs[g->n_inputs++] = v;
	return PRESSO_OK;
}

/* --- passes --------------------------------------------------------------- */

static void count_consumers(struct graph *g)
{
	for (int v = 0; v < g->n_values; v++)
		g->values[v].n_consumers = 0;
	for (int i = 0; i < g->n_nodes; i++)
		for (int k = 0; k < g->nodes[i].n_inputs; k++)
			if (g->nodes[i].inputs[k] >= 0)
				g->values[g->nodes[i].inputs[k]].n_consumers++;
}

static bool is_output(const struct graph *g, int v)
{
	for (int i = 0; i < g->n_outputs; i++)
		if (g->outputs[i] == v)
			return true;
	return false;
}

/* Shapes at batch 1 into values[].shape, resolving auto_pad on the way. */
/* A ConvTranspose's pads from its output_shape, or from auto_pad SAME (an
 * output of input times stride), as ONNX's operator text gives them:
 * total = stride (in - 1) + output_padding + dilation (k - 1) + 1 - out,
 * the odd one at the end for SAME_UPPER, at the start otherwise. */
static enum presso_status resolve_convtranspose_pads(struct node *n, const struct shape *shapes)
{
	const struct shape *x = &shapes[n->inputs[0]], *w = &shapes[n->inputs[1]];
	if (x->n_dims != 4 || w->n_dims != 4)
		return status_fail(PRESSO_E_UNSUPPORTED, "node '%s': ConvTranspose needs a 4-D NCHW input and weight",
				   n->name);
	for (int d = 0; d < 2; d++) {
		int64_t in = x->dims[2 + d], s = n->a.strides[d];
		int64_t out = n->a.n_ints == 2 ? n->a.ints[d] : in * s;
		int64_t total = s * (in - 1) + n->a.out_pad[d] + (w->dims[2 + d] - 1) * n->a.dilations[d] +
				1 - out;
		bool upper = n->a.auto_pad == 1;
		if (total == -1 && !upper) {
			/* one more row at the end (ONNX: an end pad of floor(-1 / 2)) */
			n->a.out_pad[d]++;
			total = 0;
		}
		if (total < 0 || total > 2 * (int64_t)MAX_WINDOW)
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "node '%s': ConvTranspose cannot make an output of %lld from %lld (it would need a padding of %lld)",
					   n->name, (long long)out, (long long)in, (long long)total);
		int64_t half = total / 2;
		n->a.pads[d] = (int)(upper ? half : total - half);
		n->a.pads[d + 2] = (int)(upper ? total - half : half);
	}
	n->a.auto_pad = 0;
	n->a.n_ints = 0;
	return PRESSO_OK;
}

static enum presso_status infer_and_resolve(struct graph *g)
{
	struct shape *shapes = malloc(sizeof *shapes * (size_t)g->n_values);
	if (!shapes)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	for (int v = 0; v < g->n_values; v++)
		shapes[v] = g->values[v].shape;
	for (int i = 0; i < g->n_nodes; i++) {
		struct node *n = &g->nodes[i];
		if (n->op == OP_CONVTRANSPOSE && (n->a.auto_pad || n->a.n_ints == 2)) {
			enum presso_status s = resolve_convtranspose_pads(n, shapes);
			if (s != PRESSO_OK) {
				free(shapes);
				return s;
			}
		}
		if ((n->op == OP_CONV || n->op == OP_MAXPOOL || n->op == OP_AVGPOOL) && n->a.auto_pad) {
			const struct shape *x = &shapes[n->inputs[0]];
			if (x->n_dims != 4) {
				free(shapes);
				return status_fail(PRESSO_E_UNSUPPORTED,
						   "node '%s': %s needs a 4-D NCHW input", n->name,
						   op_name(n->op));
			}
			/* a bad weight is left for shape inference to report */
			const struct shape *w = n->op == OP_CONV ? &shapes[n->inputs[1]] : NULL;
			bool w_ok = !w || (w->n_dims == 4 && w->dims[2] >= 1 && w->dims[3] >= 1);
			for (int d = 0; w_ok && d < 2; d++) {
				/* k < 2^31 (a checked shape), dilation <= MAX_WINDOW: eff fits int64 */
				int64_t k = w ? w->dims[2 + d] : n->a.kernel[d];
				int64_t in = x->dims[2 + d];
				int64_t s = n->a.strides[d], eff = (k - 1) * n->a.dilations[d] + 1;
				int64_t total = 0;
				if (n->a.auto_pad != 3) {
					int64_t out = (in + s - 1) / s;
					total = (out - 1) * s + eff - in;
					if (total < 0)
						total = 0;
				}
				int64_t small = total / 2, big = total - small;
				if (big > MAX_WINDOW) {
					free(shapes);
					return status_fail(PRESSO_E_UNSUPPORTED,
							   "node '%s': %s auto_pad needs a padding of %lld, more than %d",
							   n->name, op_name(n->op), (long long)big, MAX_WINDOW);
				}
				/* SAME_UPPER puts the extra padding at the end */
				n->a.pads[d] = (int)(n->a.auto_pad == 2 ? big : small);
				n->a.pads[d + 2] = (int)(n->a.auto_pad == 2 ? small : big);
			}
			if (w_ok)
				n->a.auto_pad = 0;
		}
		enum presso_status s = graph_infer_node(g, n, shapes, &shapes[n->output]);
		if (s != PRESSO_OK) {
			free(shapes);
			return s;
		}
	}
	for (int v = 0; v < g->n_values; v++)
		g->values[v].shape = shapes[v];
	free(shapes);
	return PRESSO_OK;
}

static bool all_const_f32(const struct graph *g, const struct node *n, int from, int to)
{
	for (int i = from; i < to; i++)
		if (i >= n->n_inputs || n->inputs[i] < 0 || !g->values[n->inputs[i]].data)
			return false;
	return true;
}

/* Folds BatchNormalization into the Conv/Gemm before it (new weight values, so
 * weights shared with other nodes stay as they were). */
static enum presso_status fold_batchnorm(struct builder *b)
{
	struct graph *g = b->g;
	count_consumers(g);
	for (int i = 0; i < g->n_nodes; i++) {
		struct node *bn = &g->nodes[i];
		if (bn->op != OP_BATCHNORM || !all_const_f32(g, bn, 1, 5))
			continue;
		int x = bn->inputs[0];
		int p = g->values[x].producer;
		if (p < 0 || g->values[x].n_consumers != 1 || is_output(g, x))
			continue;
		struct node *prod = &g->nodes[p];
		if ((prod->op != OP_CONV && prod->op != OP_GEMM) || !all_const_f32(g, prod, 1, 2))
			continue;
		bool has_bias = prod->n_inputs > 2 && prod->inputs[2] >= 0;
		if (has_bias && !g->values[prod->inputs[2]].data)
			continue;
		const struct value *w = &g->values[prod->inputs[1]];
		int64_t c = g->values[bn->inputs[1]].shape.dims[0];
		bool gemm = prod->op == OP_GEMM;
		int64_t c_w = gemm ? (prod->a.trans_b ? w->shape.dims[0] : w->shape.dims[1])
				   : w->shape.dims[0];
		if (c_w != c)
			continue;
		if (has_bias && shape_numel(&g->values[prod->inputs[2]].shape) != 1 &&
		    shape_numel(&g->values[prod->inputs[2]].shape) != c)
			continue; /* a Gemm C of [M,N] cannot take a per-column shift */
		int64_t nw = shape_numel(&w->shape);
		float *nwd = malloc(sizeof(float) * (size_t)nw);
		float *nbd = malloc(sizeof(float) * (size_t)c);
		if (!nwd || !nbd) {
			free(nwd);
			free(nbd);
			return status_fail(PRESSO_E_NOMEM, "out of memory folding BatchNormalization");
		}
		const float *gamma = g->values[bn->inputs[1]].data, *beta = g->values[bn->inputs[2]].data;
		const float *mean = g->values[bn->inputs[3]].data, *var = g->values[bn->inputs[4]].data;
		const float *bias = has_bias ? g->values[prod->inputs[2]].data : NULL;
		int64_t nbias = has_bias ? shape_numel(&g->values[prod->inputs[2]].shape) : 0;
		float alpha = gemm ? prod->a.alpha : 1.0f, beta_c = gemm ? prod->a.beta : 1.0f;
		for (int64_t j = 0; j < c; j++) {
			/* scale and shift in double: the folded weights are the new reference */
			double s = (double)gamma[j] / sqrt((double)var[j] + (double)bn->a.epsilon);
			double b0 = bias ? (double)beta_c * bias[nbias == 1 ? 0 : j] : 0.0;
			nbd[j] = (float)((b0 - mean[j]) * s + beta[j]);
			if (!gemm || prod->a.trans_b) {
				int64_t per = nw / c;
				for (int64_t k = 0; k < per; k++)
					nwd[j * per + k] = (float)(w->data[j * per + k] * alpha * s);
			} else {
				int64_t rows = w->shape.dims[0];
				for (int64_t k = 0; k < rows; k++)
					nwd[k * c + j] = (float)(w->data[k * c + j] * alpha * s);
			}
		}
		struct shape wshape = w->shape;
		char *prod_name = prod->name;
		int wv = add_derived_value(b, prod_name, "bn_weight");
		int bv = wv >= 0 ? add_derived_value(b, prod_name, "bn_bias") : -1;
		if (wv < 0 || bv < 0) {
			free(nwd);
			free(nbd);
			return PRESSO_E_NOMEM;
		}
		/* add_value may move g->values; re-fetch the nodes */
		bn = &g->nodes[i];
		prod = &g->nodes[p];
		g->values[wv].data = nwd;
		g->values[wv].shape = wshape;
		g->values[bv].data = nbd;
		g->values[bv].shape.n_dims = 1;
		g->values[bv].shape.dims[0] = c;
		prod->inputs[1] = wv;
		prod->inputs[2] = bv;
		prod->n_inputs = 3;
		if (gemm)
			prod->a.alpha = prod->a.beta = 1.0f;
		prod->output = bn->output;
		g->values[bn->output].producer = p;
		g->values[x].producer = -1;
		free(bn->name);
		memmove(&g->nodes[i], &g->nodes[i + 1], sizeof *g->nodes * (size_t)(g->n_nodes - i - 1));
		g->n_nodes--;
		for (int k = 0; k < g->n_values; k++)
			if (g->values[k].producer > i)
				g->values[k].producer--;
		g->n_folded_bn++;
		count_consumers(g);
		i--;
	}
	return PRESSO_OK;
}

/* MatMul(A[M,K], W[K,N]) followed by Add(bias[N]) -> Gemm(A, W, bias). */
static void fuse_matmul_add(struct graph *g)
{
	count_consumers(g);
	for (int i = 0; i < g->n_nodes; i++) {
		struct node *mm = &g->nodes[i];
		if (mm->op != OP_MATMUL || !all_const_f32(g, mm, 1, 2))
			continue;
		const struct value *a = &g->values[mm->inputs[0]], *w = &g->values[mm->inputs[1]];
		int y = mm->output;
		if (a->shape.n_dims != 2 || w->shape.n_dims != 2 || g->values[y].n_consumers != 1 ||
		    is_output(g, y))
			continue;
		for (int j = i + 1; j < g->n_nodes; j++) {
			struct node *add = &g->nodes[j];
			if (add->op != OP_ADD || (add->inputs[0] != y && add->inputs[1] != y))
				continue;
			int bias = add->inputs[0] == y ? add->inputs[1] : add->inputs[0];
			const struct value *bv = &g->values[bias];
			int64_t nb = shape_numel(&bv->shape);
			bool per_col = bv->data && bv->shape.n_dims <= 2 && nb == w->shape.dims[1] &&
				       bv->shape.dims[bv->shape.n_dims - 1] == nb;
			if (!per_col)
				break;
			mm->op = OP_GEMM;
			mm->a.alpha = mm->a.beta = 1.0f;
			mm->a.trans_a = mm->a.trans_b = false;
			mm->inputs[2] = bias;
			mm->n_inputs = 3;
			mm->output = add->output;
			g->values[add->output].producer = i;
			free(add->name);
			memmove(&g->nodes[j], &g->nodes[j + 1],
				sizeof *g->nodes * (size_t)(g->n_nodes - j - 1));
			g->n_nodes--;
			for (int k = 0; k < g->n_values; k++)
				if (g->values[k].producer > j)
					g->values[k].producer--;
			count_consumers(g);
			break;
		}
	}
}

/* Drops nodes nobody reads and values nobody uses; renumbers what is left. */
/* Removes the nodes whose output nothing reads; the values stay. */
static void drop_dead_nodes(struct graph *g)
{
	bool changed = true;
	while (changed) {
		changed = false;
		count_consumers(g);
		for (int i = g->n_nodes - 1; i >= 0; i--) {
			int y = g->nodes[i].output;
			if (g->values[y].n_consumers || is_output(g, y))
				continue;
			free(g->nodes[i].name);
			memmove(&g->nodes[i], &g->nodes[i + 1], sizeof *g->nodes * (size_t)(g->n_nodes - i - 1));
			g->n_nodes--;
			g->values[y].producer = -1;
			changed = true;
		}
	}
	for (int i = 0; i < g->n_nodes; i++)
		g->values[g->nodes[i].output].producer = i;
}

static enum presso_status compact(struct graph *g)
{
	drop_dead_nodes(g);
	int *map = malloc(sizeof(int) * (size_t)(g->n_values ? g->n_values : 1));
	bool *used = calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *used);
	if (!map || !used) {
		free(map);
		free(used);
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	}
	for (int i = 0; i < g->n_inputs; i++)
		used[g->inputs[i]] = true;
	for (int i = 0; i < g->n_outputs; i++)
		used[g->outputs[i]] = true;
	for (int i = 0; i < g->n_nodes; i++) {
		used[g->nodes[i].output] = true;
		for (int k = 0; k < g->nodes[i].n_inputs; k++)
			if (g->nodes[i].inputs[k] >= 0)
				used[g->nodes[i].inputs[k]] = true;
	}
	int n = 0;
	for (int v = 0; v < g->n_values; v++) {
		if (!used[v]) {
			free(g->values[v].name);
			free(g->values[v].data);
			free(g->values[v].idata);
			map[v] = -1;
			continue;
		}
		map[v] = n;
		g->values[n++] = g->values[v];
	}
	g->n_values = n;
	for (int i = 0; i < g->n_inputs; i++)
		g->inputs[i] = map[g->inputs[i]];
	for (int i = 0; i < g->n_outputs; i++)
		g->outputs[i] = map[g->outputs[i]];
	for (int i = 0; i < g->n_nodes; i++) {
		g->nodes[i].output = map[g->nodes[i].output];
		for (int k = 0; k < g->nodes[i].n_inputs; k++)
			if (g->nodes[i].inputs[k] >= 0)
				g->nodes[i].inputs[k] = map[g->nodes[i].inputs[k]];
	}
	for (int v = 0; v < g->n_values; v++)
		g->values[v].producer = -1;
	for (int i = 0; i < g->n_nodes; i++)
		g->values[g->nodes[i].output].producer = i;
	free(map);
	free(used);
	count_consumers(g);
	return PRESSO_OK;
}

/* Decides which values follow the batch: infer at batch 1 and 2 and compare.
 * A graph input whose batch was only guessed (a fixed dim 0 of 1) loses it if
 * the graph does not take batch 2. */
static enum presso_status mark_batched(struct graph *g)
{
	struct shape *s1 = malloc(sizeof *s1 * (size_t)g->n_values);
	struct shape *s2 = malloc(sizeof *s2 * (size_t)g->n_values);
	enum presso_status s = PRESSO_OK;
	if (!s1 || !s2) {
		s = status_fail(PRESSO_E_NOMEM, "out of memory");
		goto done;
	}
	s = graph_infer_shapes(g, 1, s1);
	if (s != PRESSO_OK)
		goto done;
	if (graph_infer_shapes(g, 2, s2) != PRESSO_OK) {
		status_clear();
		for (int i = 0; i < g->n_inputs; i++)
			g->values[g->inputs[i]].batched = false;
		memcpy(s2, s1, sizeof *s1 * (size_t)g->n_values);
	}
	for (int v = 0; v < g->n_values; v++) {
		struct value *val = &g->values[v];
		val->shape = s1[v];
		if (val->producer >= 0)
			val->batched = s1[v].n_dims > 0 && s2[v].dims[0] == 2 * s1[v].dims[0] &&
				       s1[v].dims[0] != 0;
	}
done:
	free(s1);
	free(s2);
	return s;
}

static enum presso_status build(struct builder *b, const Onnx__ModelProto *m)
{
	struct graph *g = b->g;
	enum presso_status s;
	const Onnx__GraphProto *gp = m->graph;
	if (!gp)
		return status_fail(PRESSO_E_FORMAT, "the model has no graph");
	b->opset = 0;
	b->gp = gp;
	for (size_t i = 0; i < m->n_opset_import; i++) {
		const Onnx__OperatorSetIdProto *o = m->opset_import[i];
		if (!o->domain || !*o->domain || strcmp(o->domain, "ai.onnx") == 0)
			b->opset = o->version;
	}
	if (b->opset < 0 || b->opset > ONNX_MAX_OPSET)
		return status_fail(PRESSO_E_UNSUPPORTED,
				   "the model uses ai.onnx opset %lld; presso supports opsets up to %d (re-export the model with opset %d or lower)",
				   (long long)b->opset, ONNX_MAX_OPSET, ONNX_MAX_OPSET);
	if (b->opset == 0)
		b->opset = 1;
	g->opset = b->opset;
	if (m->producer_name) {
		size_t len = strlen(m->producer_name) + (m->producer_version ? strlen(m->producer_version) : 0) + 2;
		g->producer = malloc(len);
		if (!g->producer)
			return status_fail(PRESSO_E_NOMEM, "out of memory");
		snprintf(g->producer, len, "%s%s%s", m->producer_name,
			 m->producer_version ? " " : "", m->producer_version ? m->producer_version : "");
	}
	if ((s = check_ops(gp)) != PRESSO_OK)
		return s;
	if (gp->n_sparse_initializer)
		return status_fail(PRESSO_E_UNSUPPORTED, "sparse initializers are not supported");
	for (size_t i = 0; i < gp->n_initializer; i++) {
		const Onnx__TensorProto *t = gp->initializer[i];
		if (!t->name || !*t->name)
			return status_fail(PRESSO_E_FORMAT, "initializer %zu has no name", i);
		if (map_find(b, t->name) >= 0)
			return status_fail(PRESSO_E_FORMAT, "initializer '%s' appears twice", t->name);
		int v = add_value(b, t->name);
		if (v < 0)
			return PRESSO_E_NOMEM;
		s = tensor_to_value(t, b->base_dir, &g->values[v]);
		if (s != PRESSO_OK)
			return s;
	}
	for (size_t i = 0; i < gp->n_input; i++)
		if ((s = import_input(b, gp->input[i])) != PRESSO_OK)
			return s;
	if (g->n_inputs == 0)
		return status_fail(PRESSO_E_FORMAT, "the graph has no runtime input");
	for (size_t i = 0; i < gp->n_node; i++)
		if ((s = import_node(b, gp->node[i], (int)i)) != PRESSO_OK)
			return s;
	for (int i = 0; i < g->n_nodes; i++)
		for (int k = 0; k < g->nodes[i].n_inputs; k++)
			if (is_batch_zeros(b, g->nodes[i].inputs[k]))
				return refuse_batch_zeros(b, g->nodes[i].inputs[k], g->nodes[i].name);
	if (gp->n_output == 0)
		return status_fail(PRESSO_E_FORMAT, "the graph has no output");
	g->outputs = malloc(sizeof(int) * gp->n_output);
	if (!g->outputs)
		return status_fail(PRESSO_E_NOMEM, "out of memory");
	for (size_t i = 0; i < gp->n_output; i++) {
		const char *name = gp->output[i]->name ? gp->output[i]->name : "";
		int v = map_find(b, name);
		if (v < 0)
			return status_fail(PRESSO_E_FORMAT, "graph output '%s' is not produced by any node",
					   name);
		if (value_is_const(&g->values[v]) || is_batch_zeros(b, v))
			return status_fail(PRESSO_E_UNSUPPORTED,
					   "graph output '%s' is a constant (it does not depend on the input)",
					   name);
		g->outputs[g->n_outputs++] = v;
	}
	if ((s = infer_and_resolve(g)) != PRESSO_OK)
		return s;
	/* the Squeezes that 1-D layers left unread would keep a BatchNorm's
	 * input from looking single-use; a recurrent layer's outputs that no one
	 * reads would run their recurrence for nothing */
	if (b->n_lifted || b->n_rnn)
		drop_dead_nodes(g);
	if (!b->keep_batchnorm && (s = fold_batchnorm(b)) != PRESSO_OK)
		return s;
	fuse_matmul_add(g);
	if ((s = compact(g)) != PRESSO_OK)
		return s;
	return mark_batched(g);
}

/* protobuf-c's unpack returns NULL both for bytes that do not parse and for an
 * allocation that failed; this allocator tells the two apart. */
static void *pb_alloc(void *failed, size_t n)
{
	void *p = malloc(n);
	if (!p)
		*(bool *)failed = true;
	return p;
}

static void pb_free(void *failed, void *p)
{
	(void)failed;
	free(p);
}

enum presso_status graph_load_onnx_bytes(const uint8_t *bytes, size_t n_bytes,
					 const char *base_dir, struct graph **out)
{
	return graph_load_onnx_bytes_opts(bytes, n_bytes, base_dir, NULL, out);
}

enum presso_status graph_load_onnx_bytes_opts(const uint8_t *bytes, size_t n_bytes,
					      const char *base_dir,
					      const struct graph_load_opts *opts, struct graph **out)
{
	*out = NULL;
	status_clear();
	bool pb_failed = false;
	ProtobufCAllocator pb = {pb_alloc, pb_free, &pb_failed};
	Onnx__ModelProto *m = onnx__model_proto__unpack(&pb, n_bytes, bytes);
	if (!m && pb_failed)
		return status_fail(PRESSO_E_NOMEM, "out of memory reading the model");
	if (!m)
		return status_fail(PRESSO_E_FORMAT,
				   "not a valid ONNX model (the protobuf does not parse: truncated or corrupt)");
	struct builder b = {.base_dir = base_dir, .keep_batchnorm = opts && opts->keep_batchnorm};
	b.g = calloc(1, sizeof *b.g);
	enum presso_status s;
	if (!b.g)
		s = status_fail(PRESSO_E_NOMEM, "out of memory");
	else
		s = build(&b, m);
	onnx__model_proto__free_unpacked(m, &pb);
	free(b.slots);
	free(b.lifted);
	for (int i = 0; i < b.n_batch_zeros; i++)
		free(b.batch_zeros[i]);
	free(b.batch_zeros);
	if (s != PRESSO_OK) {
		graph_free(b.g);
		return s;
	}
	*out = b.g;
	return PRESSO_OK;
}

static char *dir_of(const char *path)
{
	const char *slash = strrchr(path, '/');
	if (!slash)
		return strdup(".");
	if (slash == path)
		return strdup("/");
	return strndup(path, (size_t)(slash - path));
}

enum presso_status graph_load_onnx(const char *path, struct graph **out)
{
	return graph_load_onnx_opts(path, NULL, out);
}

enum presso_status graph_load_onnx_opts(const char *path, const struct graph_load_opts *opts,
					struct graph **out)
{
	*out = NULL;
	char *bytes;
	size_t n;
	enum presso_status s = file_read_all(path, "a model file", 0, &bytes, &n);
	if (s != PRESSO_OK)
		return s;
	if (n == 0) {
		free(bytes);
		return status_fail(PRESSO_E_FORMAT, "%s: the file is empty (0 bytes), not a model",
				   path);
	}
	char *dir = dir_of(path);
	s = dir ? graph_load_onnx_bytes_opts((const uint8_t *)bytes, n, dir, opts, out)
		: status_fail(PRESSO_E_NOMEM, "out of memory");
	free(bytes);
	free(dir);
	if (s != PRESSO_OK)
		status_wrap(s, "%s", path);
	return s;
}

enum presso_status graph_load_tensor_pb(const char *path, struct value *out)
{
	memset(out, 0, sizeof *out);
	char *bytes;
	size_t n;
	enum presso_status s = file_read_all(path, "a tensor file", 0, &bytes, &n);
	if (s != PRESSO_OK)
		return s;
	bool pb_failed = false;
	ProtobufCAllocator pb = {pb_alloc, pb_free, &pb_failed};
	Onnx__TensorProto *t = onnx__tensor_proto__unpack(&pb, n, (const uint8_t *)bytes);
	free(bytes);
	if (!t && pb_failed)
		return status_fail(PRESSO_E_NOMEM, "%s: out of memory reading a TensorProto", path);
	if (!t)
		return status_fail(PRESSO_E_FORMAT, "%s: not a TensorProto", path);
	out->name = strdup(t->name ? t->name : "");
	out->producer = -1;
	char *dir = dir_of(path);
	if (!out->name || !dir)
		s = status_fail(PRESSO_E_NOMEM, "out of memory");
	else
		s = tensor_to_value(t, dir, out);
	free(dir);
	onnx__tensor_proto__free_unpacked(t, &pb);
	if (s != PRESSO_OK) {
		free(out->name);
		out->name = NULL;
		return status_wrap(s, "%s", path);
	}
	return PRESSO_OK;
}
