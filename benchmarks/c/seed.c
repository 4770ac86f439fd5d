/*
 * Hand-written C baseline for the "seed" patch of the oscen peer benchmark:
 *   sine (freq, amp) -> RBJ biquad lowpass (cutoff, q) -> gain
 * float64 throughout; biquad in transposed direct form II (the same structure as
 * scipy.signal.lfilter, which benchmarks/peers/reference.py uses).
 *
 * Built at benchmark time into a shared library (benchmarks/peers/c_engine.py) and driven
 * through ctypes: one call to seed_render() per render, which loops over blocks in C, each
 * block handled by seed_process_block() with the state kept in locals inside the block.
 *
 * Oscillator, chosen at compile time:
 *   default             x = sin(2 pi phase), phase accumulator in cycles (libm sin per sample)
 *   -DPEER_OSC_ROTATION  quadrature recurrence (c, s) <- rotate(c, s, w): 4 mul + 2 add per
 *                        sample and no transcendental; renormalised once per block so the
 *                        amplitude cannot drift. Same sin(n w) up to ~1e-11 over minutes.
 */
#include <math.h>
#include <stdlib.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

typedef struct {
    double sample_rate, freq, amp, gain;
    double b0, b1, b2, a1, a2; /* normalised, a0 == 1 */
    double phase, inc;         /* libm: phase in cycles, [0, 1) */
    double c, s, cw, sw;       /* rotation: (cos, sin) of the phase and of the increment */
    double z1, z2;             /* TDF-II state */
} seed_t;

static void rbj_lowpass(double sr, double cutoff, double q, double *b0, double *b1, double *b2, double *a1,
                        double *a2)
{
    double w0 = 2.0 * M_PI * cutoff / sr;
    double c = cos(w0), alpha = sin(w0) / (2.0 * q), a0 = 1.0 + alpha;
    *b0 = (1.0 - c) / 2.0 / a0;
    *b1 = (1.0 - c) / a0;
    *b2 = (1.0 - c) / 2.0 / a0;
    *a1 = -2.0 * c / a0;
    *a2 = (1.0 - alpha) / a0;
}

void seed_reset(seed_t *s)
{
    s->phase = 0.0;
    s->c = 1.0;
    s->s = 0.0;
    s->z1 = s->z2 = 0.0;
}

seed_t *seed_create(double sample_rate, double freq, double amp, double cutoff, double q, double gain)
{
    seed_t *s = calloc(1, sizeof(seed_t));
    if (!s)
        return NULL;
    s->sample_rate = sample_rate;
    s->freq = freq;
    s->amp = amp;
    s->gain = gain;
    s->inc = freq / sample_rate;
    s->cw = cos(2.0 * M_PI * s->inc);
    s->sw = sin(2.0 * M_PI * s->inc);
    rbj_lowpass(sample_rate, cutoff, q, &s->b0, &s->b1, &s->b2, &s->a1, &s->a2);
    seed_reset(s);
    return s;
}

void seed_destroy(seed_t *s) { free(s); }

/* One block of n samples into out[0..n). */
void seed_process_block(seed_t *restrict s, double *restrict out, int n)
{
    const double b0 = s->b0, b1 = s->b1, b2 = s->b2, a1 = s->a1, a2 = s->a2;
    const double amp = s->amp, gain = s->gain;
    double z1 = s->z1, z2 = s->z2;
#ifdef PEER_OSC_ROTATION
    const double cw = s->cw, sw = s->sw;
    double oc = s->c, os = s->s;
#else
    const double inc = s->inc;
    double phase = s->phase;
#endif
    for (int i = 0; i < n; i++) {
#ifdef PEER_OSC_ROTATION
        double x = amp * os;
        double t = oc * cw - os * sw;
        os = os * cw + oc * sw;
        oc = t;
#else
        double x = amp * sin(2.0 * M_PI * phase);
        phase += inc;
        if (phase >= 1.0)
            phase -= 1.0;
#endif
        double y = b0 * x + z1;
        z1 = b1 * x - a1 * y + z2;
        z2 = b2 * x - a2 * y;
        out[i] = gain * y;
    }
#ifdef PEER_OSC_ROTATION
    double g = 1.5 - 0.5 * (oc * oc + os * os); /* one Newton step towards |(c, s)| = 1 */
    s->c = oc * g;
    s->s = os * g;
#else
    s->phase = phase;
#endif
    s->z1 = z1;
    s->z2 = z2;
}

/* Render n samples from t = 0 in blocks of `block` (the last one may be shorter). */
void seed_render(seed_t *s, double *out, long n, int block)
{
    seed_reset(s);
    for (long i = 0; i < n; i += block) {
        long m = n - i < block ? n - i : block;
        seed_process_block(s, out + i, (int)m);
    }
}
