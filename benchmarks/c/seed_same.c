/*
 * The "seed" patch (sine -> RBJ biquad lowpass -> gain) as C doing exactly oscen's arithmetic:
 * the same IEEE operations in the same order as the nodes' compiled code (oscen/oscillators.py
 * Oscillator.process for the sine, oscen/filters.py Biquad/IirLowpass, oscen/gain.py Gain, and
 * oscen/sine.py's sin_cycles/cos_cycles), so that its output is bit for bit oscen's
 * (tests/test_peer_c_same.py checks it). Built with -ffp-contract=off: no FMA contraction, which
 * would round differently (and which oscen's WebAssembly cannot do either).
 *
 * Per sample, as oscen:
 *   oscillator: the rotation recurrence (c, s) <- (c cw - s sw, s cw + c sw), restarted from the
 *     phase by the polynomial (4 polynomials) when its countdown `left` runs out (every 1024
 *     samples) or the increment changes; the phase accumulated and wrapped alongside.
 *   biquad: a parameter-change test (cutoff, q, sample rate against the values the coefficients
 *     were computed for: NaN at the start, so the first sample computes them), TDF-II with the
 *     output flushed to 0 below 1e-30 in magnitude.
 *   gain: one multiply.
 * Python's min(a, b) is `b < a ? b : a` and max(a, b) `b > a ? b : a` (NaN and -0.0 as Python).
 *
 * Driven like seed.c (benchmarks/peers/c_engine.py, CEngine(osc="same")): seed_render() loops
 * over blocks in C, each block with the state in locals.
 */
#include <math.h>
#include <stdlib.h>

/* oscen/sine.py */
#define ROUND 6755399441055744.0 /* 1.5 * 2**52 */
#define LIMIT 2251799813685248.0 /* 2**51 */
#define S1 6.283185307179586
#define S3 -41.341702240399755
#define S5 81.60524927607341
#define S7 -76.7058597527985
#define S9 42.05869392378516
#define S11 -15.094641620507256
#define S13 3.819927050426838
#define S15 -0.7177235796322367
#define S17 0.1008563286389846
/* oscen/oscillators.py, oscen/filters.py */
#define RESYNC_SAMPLES 1024.0
#define MIN_CUTOFF_HZ 0.01
#define MAX_CUTOFF_RATIO 0.49
#define MIN_Q 0.01
#define TINY 5e-324
#define DENORMAL 1.0e-30

static inline double py_min(double a, double b) { return b < a ? b : a; }
static inline double py_max(double a, double b) { return b > a ? b : a; }

static inline double poly(double x)
{
    double z = x * x;
    double r = S17 * z + S15;
    r = r * z + S13;
    r = r * z + S11;
    r = r * z + S9;
    r = r * z + S7;
    r = r * z + S5;
    r = r * z + S3;
    r = r * z + S1;
    return x * r;
}

static inline double sin_cycles(double p)
{
    double q = py_min(py_max(p, -LIMIT), LIMIT);
    double x = q - ((q + ROUND) - ROUND);
    x = py_min(x, 0.5 - x);
    x = py_max(x, -0.5 - x);
    return poly(x);
}

static inline double cos_cycles(double p)
{
    double q = py_min(py_max(p, -LIMIT), LIMIT);
    double x = q - ((q + ROUND) - ROUND);
    x = 0.25 - fabs(x);
    return poly(x);
}

typedef struct {
    double sample_rate, freq, amp, gain, cutoff, q;
    /* Oscillator (its attributes of the same names) */
    double phase, c, s, cw, sw, increment, left;
    /* Biquad */
    double b0, b1, b2, a1, a2, s1, s2, last_cutoff, last_q, last_sample_rate;
} seed_t;

void seed_reset(seed_t *st)
{
    st->phase = 0.0;
    st->c = 1.0;
    st->s = 0.0;
    st->cw = 1.0;
    st->sw = 0.0;
    st->increment = NAN;
    st->left = 0.0;
    st->b0 = 1.0;
    st->b1 = st->b2 = st->a1 = st->a2 = 0.0;
    st->s1 = st->s2 = 0.0;
    st->last_cutoff = st->last_q = st->last_sample_rate = NAN;
}

seed_t *seed_create(double sample_rate, double freq, double amp, double cutoff, double q, double gain)
{
    seed_t *st = calloc(1, sizeof(seed_t));
    if (!st)
        return NULL;
    st->sample_rate = sample_rate;
    st->freq = freq;
    st->amp = amp;
    st->gain = gain;
    st->cutoff = cutoff;
    st->q = q;
    seed_reset(st);
    return st;
}

void seed_destroy(seed_t *st) { free(st); }

/* IirLowpass._update_coefficients (rare: a parameter changed; Biquad._recompute remembers the
 * parameters in the caller). */
static void coefficients(seed_t *restrict st, double cutoff, double q, double sample_rate)
{
    double f0 = py_min(py_max(cutoff, MIN_CUTOFF_HZ), MAX_CUTOFF_RATIO * sample_rate);
    double cycles = f0 / py_max(sample_rate, TINY);
    double sin_w0 = sin_cycles(cycles), cos_w0 = cos_cycles(cycles);
    double alpha = sin_w0 / (2.0 * py_max(q, MIN_Q));
    double b1 = 1.0 - cos_w0;
    double b0 = 0.5 * b1, b2 = 0.5 * b1, a0 = 1.0 + alpha, a1 = -2.0 * cos_w0, a2 = 1.0 - alpha;
    double inv = 1.0 / py_max(a0, TINY);
    st->b0 = b0 * inv;
    st->b1 = b1 * inv;
    st->b2 = b2 * inv;
    st->a1 = a1 * inv;
    st->a2 = a2 * inv;
}

/* One block of n samples into out[0..n). */
void seed_process_block(seed_t *restrict st, double *restrict out, int n)
{
    const double sample_rate = st->sample_rate, inv_rate = 1.0 / sample_rate;
    const double freq = st->freq, amp = st->amp, gain = st->gain, cutoff = st->cutoff, q = st->q;
    double phase = st->phase, oc = st->c, os = st->s, cw = st->cw, sw = st->sw;
    double last_increment = st->increment, left = st->left;
    double b0 = st->b0, b1 = st->b1, b2 = st->b2, a1 = st->a1, a2 = st->a2, s1 = st->s1, s2 = st->s2;
    double last_cutoff = st->last_cutoff, last_q = st->last_q, last_sample_rate = st->last_sample_rate;
    for (int i = 0; i < n; i++) {
        /* Oscillator.process, the sine with pm unconnected (0.0) and fm unconnected (0.0) */
        double increment = (freq + 0.0) * inv_rate;
        double p = phase;
        if (left <= 0.0 || increment != last_increment) {
            double s, c;
            if (increment == last_increment) { /* _restart */
                s = sin_cycles(p);
                c = cos_cycles(p);
                cw = cos_cycles(increment);
                sw = sin_cycles(increment);
                left = RESYNC_SAMPLES;
            } else { /* _polynomial */
                s = sin_cycles(p);
                c = 0.0;
                last_increment = increment;
                left = 0.0;
            }
            os = s;
            oc = c;
        }
        double c = oc, value = os;
        oc = c * cw - value * sw;
        os = value * cw + c * sw;
        left = left - 1.0;
        double x = amp * value;
        phase = phase + increment;
        phase = phase >= 1.0 ? phase - 1.0 : phase;
        if (phase >= 1.0 || phase < 0.0) {
            phase = phase - floor(phase);
            if (phase >= 1.0)
                phase = 0.0;
        }
        /* Biquad.process (update_every 1) */
        if (cutoff != last_cutoff || q != last_q || sample_rate != last_sample_rate) {
            last_cutoff = cutoff;
            last_q = q;
            last_sample_rate = sample_rate;
            coefficients(st, cutoff, q, sample_rate);
            b0 = st->b0;
            b1 = st->b1;
            b2 = st->b2;
            a1 = st->a1;
            a2 = st->a2;
        }
        double y = b0 * x + s1;
        y = fabs(y) < DENORMAL ? 0.0 : y;
        s1 = b1 * x - a1 * y + s2;
        s2 = b2 * x - a2 * y;
        /* Gain.process */
        out[i] = y * gain;
    }
    st->phase = phase;
    st->c = oc;
    st->s = os;
    st->cw = cw;
    st->sw = sw;
    st->increment = last_increment;
    st->left = left;
    st->s1 = s1;
    st->s2 = s2;
    st->last_cutoff = last_cutoff;
    st->last_q = last_q;
    st->last_sample_rate = last_sample_rate;
}

/* Render n samples from t = 0 in blocks of `block` (the last one may be shorter). */
void seed_render(seed_t *st, double *out, long n, int block)
{
    seed_reset(st);
    for (long i = 0; i < n; i += block) {
        long m = n - i < block ? n - i : block;
        seed_process_block(st, out + i, (int)m);
    }
}
