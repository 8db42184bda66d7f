/* The compact text of a measurement's test_keys, straight from the bytes a probe sent.
 *
 * reachwatch.collector.json_text documents what this computes and holds the plain-Python version
 * of the same functions (used when this extension is not built, and compared with it by the
 * tests). Both take text simdjson has already validated: what is not well-formed JSON here is a
 * ValueError, never a read past the buffer.
 *
 *   object_member(data, start, key, compact=False) -> (value_start, value_end, text) | None
 *   compact(data, start, end) -> bytes
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

typedef const unsigned char *text;

static int is_space(unsigned char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

static Py_ssize_t skip_space(text s, Py_ssize_t i, Py_ssize_t n)
{
    while (i < n && is_space(s[i]))
        i++;
    return i;
}

/* The first '"' or '\\' at or after i, or n. Most of a measurement's bytes are inside strings. */
static Py_ssize_t string_stop(text s, Py_ssize_t i, Py_ssize_t n)
{
#ifdef __SSE2__
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
    while (i + 16 <= n) {
        __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
        int mask = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)));
        if (mask)
            return i + __builtin_ctz((unsigned)mask);
        i += 16;
    }
#endif
    while (i < n && s[i] != '"' && s[i] != '\\')
        i++;
    return i;
}

/* Past the string whose opening quote is at i, or -1. */
static Py_ssize_t skip_string(text s, Py_ssize_t i, Py_ssize_t n)
{
    i++;
    for (;;) {
        i = string_stop(s, i, n);
        if (i >= n)
            return -1;
        if (s[i] == '"')
            return i + 1;
        i += 2; /* an escape: its second byte is never the closing quote */
    }
}

/* Past the value starting at i (no space before it), or -1. */
static Py_ssize_t skip_value(text s, Py_ssize_t i, Py_ssize_t n)
{
    if (i >= n)
        return -1;
    if (s[i] == '"')
        return skip_string(s, i, n);
    if (s[i] == '{' || s[i] == '[') {
        Py_ssize_t depth = 0;
        while (i < n) {
            unsigned char c = s[i];
            if (c == '"') {
                i = skip_string(s, i, n);
                if (i < 0)
                    return -1;
                continue;
            }
            if (c == '{' || c == '[')
                depth++;
            else if (c == '}' || c == ']') {
                if (--depth == 0)
                    return i + 1;
            }
            i++;
        }
        return -1;
    }
    while (i < n && !is_space(s[i]) && s[i] != ',' && s[i] != '}' && s[i] != ']')
        i++;
    return i;
}

static int hex4(text s, Py_ssize_t i, Py_ssize_t n, unsigned *out)
{
    unsigned v = 0;
    if (i + 4 > n)
        return -1;
    for (int k = 0; k < 4; k++) {
        unsigned char c = s[i + k];
        v <<= 4;
        if (c >= '0' && c <= '9')
            v |= c - '0';
        else if (c >= 'a' && c <= 'f')
            v |= c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            v |= c - 'A' + 10;
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* The escape whose backslash is at i: its code point in *cp, and where the text goes on; -1 if it
 * is not one (or a lone surrogate). */
static Py_ssize_t unescape(text s, Py_ssize_t i, Py_ssize_t n, unsigned *cp)
{
    if (i + 1 >= n)
        return -1;
    switch (s[i + 1]) {
    case '"': *cp = '"'; return i + 2;
    case '\\': *cp = '\\'; return i + 2;
    case '/': *cp = '/'; return i + 2;
    case 'b': *cp = '\b'; return i + 2;
    case 'f': *cp = '\f'; return i + 2;
    case 'n': *cp = '\n'; return i + 2;
    case 'r': *cp = '\r'; return i + 2;
    case 't': *cp = '\t'; return i + 2;
    case 'u': break;
    default: return -1;
    }
    unsigned hi, lo;
    if (hex4(s, i + 2, n, &hi) < 0)
        return -1;
    if (hi >= 0xDC00 && hi <= 0xDFFF)
        return -1;
    if (hi < 0xD800 || hi > 0xDBFF) {
        *cp = hi;
        return i + 6;
    }
    if (i + 12 > n || s[i + 6] != '\\' || s[i + 7] != 'u' || hex4(s, i + 8, n, &lo) < 0 || lo < 0xDC00 || lo > 0xDFFF)
        return -1;
    *cp = 0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00);
    return i + 12;
}

/* A code point as orjson writes it in a string: '"', '\\' and the controls escaped (\b \t \n \f
 * \r by name, the others as \u00xx), everything else as UTF-8. Never longer than its escape. */
static unsigned char *put_code_point(unsigned char *o, unsigned cp)
{
    static const char hex[] = "0123456789abcdef";
    if (cp < 0x20) {
        *o++ = '\\';
        switch (cp) {
        case '\b': *o++ = 'b'; break;
        case '\t': *o++ = 't'; break;
        case '\n': *o++ = 'n'; break;
        case '\f': *o++ = 'f'; break;
        case '\r': *o++ = 'r'; break;
        default:
            *o++ = 'u'; *o++ = '0'; *o++ = '0'; *o++ = hex[cp >> 4]; *o++ = hex[cp & 15];
        }
    } else if (cp == '"' || cp == '\\') {
        *o++ = '\\';
        *o++ = (unsigned char)cp;
    } else if (cp < 0x80) {
        *o++ = (unsigned char)cp;
    } else if (cp < 0x800) {
        *o++ = (unsigned char)(0xC0 | (cp >> 6));
        *o++ = (unsigned char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
        *o++ = (unsigned char)(0xE0 | (cp >> 12));
        *o++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (unsigned char)(0x80 | (cp & 0x3F));
    } else {
        *o++ = (unsigned char)(0xF0 | (cp >> 18));
        *o++ = (unsigned char)(0x80 | ((cp >> 12) & 0x3F));
        *o++ = (unsigned char)(0x80 | ((cp >> 6) & 0x3F));
        *o++ = (unsigned char)(0x80 | (cp & 0x3F));
    }
    return o;
}

static PyObject *not_json(const char *what, Py_ssize_t at)
{
    PyErr_Format(PyExc_ValueError, "%s at byte %zd", what, at);
    return NULL;
}

#ifdef __SSE2__
/* One bit a byte of 64: where it is a quote, a backslash, at most ' ' (outside strings, a space;
 * inside them, raw controls are not JSON), and with brackets, an opening and a closing bracket. */
typedef struct {
    uint64_t quote, backslash, space, open, close;
} block_bits;

static inline void read_block(text p, int brackets, __m128i v[4], block_bits *b)
{
    const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\'), space = _mm_set1_epi8(' ');
    const __m128i open = _mm_set1_epi8('{'), close = _mm_set1_epi8('}'); /* [ and ] are { and } but 0x20 */
    uint64_t q = 0, bs = 0, sp = 0, op = 0, cl = 0;
    for (int k = 0; k < 4; k++) {
        v[k] = _mm_loadu_si128((const __m128i *)(p + 16 * k));
        q |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v[k], quote)) << (16 * k);
        bs |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(v[k], backslash)) << (16 * k);
        sp |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(v[k], space), v[k])) << (16 * k);
        if (brackets) {
            __m128i folded = _mm_or_si128(v[k], space);
            op |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(folded, open)) << (16 * k);
            cl |= (uint64_t)(uint16_t)_mm_movemask_epi8(_mm_cmpeq_epi8(folded, close)) << (16 * k);
        }
    }
    b->quote = q;
    b->backslash = bs;
    b->space = sp;
    b->open = op;
    b->close = cl;
}

/* Where an even number of quotes precede (a bit set from an opening quote up to its closing one). */
static uint64_t prefix_xor(uint64_t x)
{
    x ^= x << 1;
    x ^= x << 2;
    x ^= x << 4;
    x ^= x << 8;
    x ^= x << 16;
    x ^= x << 32;
    return x;
}
#endif

/* Writes the compact text of s[i:n] at *out (moved past it), or with one_value, of the one value
 * starting at i, and says where it stopped; -1 with *fault set for text that is not JSON. The
 * buffer must hold n - i bytes: the compact text is never longer than the text (spaces go, an
 * escape is at least as long as what it writes), and bytes are copied 16 or 64 at a time, never
 * past where the text's own bytes would reach.
 *
 * Text that is compact already and has no escapes (most of a measurement) goes 64 bytes at a time:
 * a block is copied whole when it has no backslash and no space outside strings (where strings are
 * is the running parity of its quotes) and, for one value, does not hold the value's end (the
 * depth, followed over its brackets outside strings, stays above 0). Any other block is read byte
 * by byte. */
static Py_ssize_t compact_run(text s, Py_ssize_t i, Py_ssize_t n, unsigned char **out, int one_value, const char **fault)
{
    unsigned char *o = *out;
    Py_ssize_t depth = 0;
    int in_string = 0, done = 0;
    while (i < n && !done) {
        Py_ssize_t limit = n;
#ifdef __SSE2__
        if (i + 64 <= n) {
            __m128i v[4];
            block_bits bits;
            read_block(s + i, one_value, v, &bits);
            if (bits.backslash == 0) {
                uint64_t strings = prefix_xor(bits.quote) ^ (in_string ? ~(uint64_t)0 : 0);
                int whole = (bits.space & ~strings) == 0;
                Py_ssize_t d = depth;
                if (whole && one_value) { /* the depth, bracket by bracket: does the value end here? */
                    uint64_t close_bits = bits.close & ~strings;
                    uint64_t brackets = (bits.open & ~strings) | close_bits;
                    for (; brackets != 0 && d > 0; brackets &= brackets - 1)
                        d += 1 - 2 * (Py_ssize_t)((close_bits >> __builtin_ctzll(brackets)) & 1);
                    whole = d > 0;
                }
                if (whole) {
                    for (int q = 0; q < 4; q++)
                        _mm_storeu_si128((__m128i *)(o + 16 * q), v[q]);
                    o += 64;
                    i += 64;
                    depth = d;
                    in_string = (int)(strings >> 63);
                    continue;
                }
            }
            limit = i + 64; /* this block byte by byte (a string or escape may take it further) */
        }
#endif
        while (i < limit && !done) {
            if (in_string) {
#ifdef __SSE2__
                const __m128i quote = _mm_set1_epi8('"'), backslash = _mm_set1_epi8('\\');
                while (i + 16 <= n) {
                    __m128i v = _mm_loadu_si128((const __m128i *)(s + i));
                    _mm_storeu_si128((__m128i *)o, v);
                    int mask = _mm_movemask_epi8(_mm_or_si128(_mm_cmpeq_epi8(v, quote), _mm_cmpeq_epi8(v, backslash)));
                    if (mask) {
                        int k = __builtin_ctz((unsigned)mask);
                        i += k;
                        o += k;
                        goto stop;
                    }
                    i += 16;
                    o += 16;
                }
#endif
                while (i < n && s[i] != '"' && s[i] != '\\')
                    *o++ = s[i++];
                if (i >= n) {
                    *fault = "a string not closed";
                    return -1;
                }
#ifdef __SSE2__
            stop:
#endif
                if (s[i] == '"') {
                    *o++ = '"';
                    i++;
                    in_string = 0;
                    done = one_value && depth == 0;
                    continue;
                }
                unsigned cp;
                Py_ssize_t next = unescape(s, i, n, &cp);
                if (next < 0) {
                    *fault = "an escape that is not JSON";
                    return -1;
                }
                i = next;
                o = put_code_point(o, cp);
                continue;
            }
            unsigned char c = s[i];
            if (c == '"') {
                *o++ = '"';
                i++;
                in_string = 1;
                continue;
            }
            if (is_space(c)) {
                if (one_value && depth == 0 && o != *out) {
                    done = 1; /* after a scalar */
                    break;
                }
                i++;
                continue;
            }
            if (one_value) {
                if (c == '{' || c == '[')
                    depth++;
                else if (c == '}' || c == ']') {
                    if (depth == 0) {
                        done = 1; /* after a scalar */
                        break;
                    }
                    if (--depth == 0)
                        done = 1;
                } else if (c == ',' && depth == 0) {
                    done = 1;
                    break;
                }
            }
            *o++ = c;
            i++;
        }
    }
    if (in_string) {
        *fault = "a string not closed";
        return -1;
    }
    if (one_value && (depth != 0 || o == *out)) {
        *fault = "a value not closed";
        return -1;
    }
    *out = o;
    return i;
}

static int get_text(PyObject *data, Py_buffer *view)
{
    return PyObject_GetBuffer(data, view, PyBUF_SIMPLE);
}

static PyObject *compact(PyObject *self, PyObject *args)
{
    PyObject *data;
    Py_ssize_t start, end;
    Py_buffer view;
    (void)self;
    if (!PyArg_ParseTuple(args, "Onn", &data, &start, &end) || get_text(data, &view) < 0)
        return NULL;
    if (start < 0 || end > view.len || start > end) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_IndexError, "compact: start and end must lie within the text");
        return NULL;
    }
    PyObject *out = PyBytes_FromStringAndSize(NULL, end - start);
    if (out == NULL) {
        PyBuffer_Release(&view);
        return NULL;
    }
    unsigned char *o = (unsigned char *)PyBytes_AS_STRING(out);
    const char *fault = NULL;
    Py_ssize_t stop = compact_run(view.buf, start, end, &o, 0, &fault);
    PyBuffer_Release(&view);
    if (stop < 0) {
        Py_DECREF(out);
        return not_json(fault, start);
    }
    if (_PyBytes_Resize(&out, (Py_ssize_t)(o - (unsigned char *)PyBytes_AS_STRING(out))) < 0)
        return NULL;
    return out;
}

/* Whether the key string whose opening quote is at i (ending before key_end, its closing quote)
 * reads as the name wanted, escapes undone. */
static int key_is(text s, Py_ssize_t i, Py_ssize_t key_end, const char *want, Py_ssize_t want_len)
{
    Py_ssize_t k = 0;
    i++;
    while (i < key_end) {
        unsigned char buf[4];
        unsigned char *b = buf;
        Py_ssize_t next;
        if (s[i] == '\\') {
            unsigned cp;
            next = unescape(s, i, key_end, &cp);
            if (next < 0)
                return 0;
            if (cp == '"' || cp == '\\' || cp < 0x20)
                *b++ = (unsigned char)cp; /* the character itself, as the name holds it */
            else
                b = put_code_point(b, cp);
        } else {
            *b++ = s[i];
            next = i + 1;
        }
        Py_ssize_t len = b - buf;
        if (k + len > want_len || memcmp(want + k, buf, (size_t)len) != 0)
            return 0;
        k += len;
        i = next;
    }
    return k == want_len;
}

static PyObject *object_member(PyObject *self, PyObject *args)
{
    PyObject *data;
    Py_ssize_t start;
    const char *want;
    Py_ssize_t want_len;
    int compact_it = 0;
    Py_buffer view;
    PyObject *found_text = NULL;
    (void)self;
    if (!PyArg_ParseTuple(args, "Ony#|p", &data, &start, &want, &want_len, &compact_it) || get_text(data, &view) < 0)
        return NULL;
    text s = view.buf;
    Py_ssize_t n = view.len, found_start = -1, found_end = -1;
    const char *fault = NULL;
    if (start < 0 || start > n) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_IndexError, "object_member: start must lie within the text");
        return NULL;
    }
    Py_ssize_t i = skip_space(s, start, n);
    if (i >= n || s[i] != '{') {
        PyBuffer_Release(&view);
        Py_RETURN_NONE;
    }
    i = skip_space(s, i + 1, n);
    if (i < n && s[i] == '}')
        goto done;
    for (;;) {
        if (i >= n || s[i] != '"') {
            fault = "a member without a name";
            goto done;
        }
        Py_ssize_t key_end = skip_string(s, i, n);
        if (key_end < 0) {
            fault = "a name not closed";
            goto done;
        }
        int wanted = key_is(s, i, key_end - 1, want, want_len);
        i = skip_space(s, key_end, n);
        if (i >= n || s[i] != ':') {
            fault = "a name without a colon";
            goto done;
        }
        i = skip_space(s, i + 1, n);
        if (wanted) {
            found_start = i;
            if (!compact_it)
                goto done;
            found_text = PyBytes_FromStringAndSize(NULL, n - i);
            if (found_text == NULL) {
                PyBuffer_Release(&view);
                return NULL;
            }
            unsigned char *o = (unsigned char *)PyBytes_AS_STRING(found_text);
            found_end = compact_run(s, i, n, &o, 1, &fault);
            if (found_end < 0)
                goto done;
            if (_PyBytes_Resize(&found_text, (Py_ssize_t)(o - (unsigned char *)PyBytes_AS_STRING(found_text))) < 0) {
                PyBuffer_Release(&view);
                return NULL;
            }
            goto done;
        }
        Py_ssize_t value_end = skip_value(s, i, n);
        if (value_end < 0 || value_end == i) {
            fault = "a value not closed";
            goto done;
        }
        i = skip_space(s, value_end, n);
        if (i < n && s[i] == ',') {
            i = skip_space(s, i + 1, n);
            continue;
        }
        if (i < n && s[i] == '}')
            break;
        fault = "an object not closed";
        goto done;
    }
done:
    PyBuffer_Release(&view);
    if (fault != NULL) {
        Py_XDECREF(found_text);
        return not_json(fault, i);
    }
    if (found_text == NULL)
        return Py_BuildValue("(nnO)", found_start, found_end, Py_None);
    return Py_BuildValue("(nnN)", found_start, found_end, found_text);
}

static PyMethodDef methods[] = {
    {"compact", compact, METH_VARARGS,
     "compact(data, start, end) -> bytes: data[start:end] without the spaces between tokens, its "
     "strings' escapes written as orjson writes them."},
    {"object_member", object_member, METH_VARARGS,
     "object_member(data, start, key, compact=False) -> (value_start, value_end, text) | None: "
     "where the value of the first member named key starts in the object at data[start:] (after "
     "spaces; -1: none) and, with compact, where it ends and its compact text (else -1, None); "
     "None if no object starts there. The object is read up to that member only."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_json_text", "See reachwatch.collector.json_text.", -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__json_text(void) { return PyModule_Create(&module); }
