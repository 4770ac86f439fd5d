/*
 * Hand-written C baseline for the "voices64" patch of the oscen peer benchmark:
 *   N sines (freq[k], amp each) -> each through its own RBJ biquad lowpass -> summed.
 * float64 throughout; biquads in transposed direct form II.
 *
 * Layout: structure of arrays, one block at a time, voice by voice: for each voice the
 * state is loaded into locals, the whole block is computed and added into out, and the state
 * is stored back. That is what a block-based engine does with one node per voice, minus all
 * dispatch overhead. voices_render() loops over blocks in C (one ctypes call per render).
 *
 * Oscillator, chosen at compile time: libm sin() of a phase accumulator (default) or, with
 * -DPEER_OSC_ROTATION, a quadrature recurrence renormalised once per block (see seed.c).
 *
 * -DPEER_VOICES_INTERLEAVED switches the loop order inside a block to sample-outer,
 * voice-inner over the SoA state arrays. Each voice's biquad is a serial recurrence (latency
 * bound, ~8 cycles a sample); interleaving lets the CPU overlap the 64 independent recurrences
 * and lets gcc vectorise across voices (with the rotation oscillator; libm sin() is a scalar
 * call). That is the practical limit a compiler of a whole patch could reach.
 * The interleaved build needs -DPEER_NV=<voice count>.
 */

#if defined(PEER_VOICES_INTERLEAVED) && !defined(PEER_NV)
#error "PEER_VOICES_INTERLEAVED needs -DPEER_NV=<number of voices>"
#endif
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

typedef struct {
    int n;
    double amp;
    double b0, b1, b2, a1, a2; /* shared: every voice has the same lowpass */
    double *inc, *phase, *z1, *z2;
    double *c, *s, *cw, *sw; /* rotation oscillator state and increments */
} voices_t;

void voices_reset(voices_t *v)
{
    memset(v->phase, 0, sizeof(double) * v->n);
    memset(v->z1, 0, sizeof(double) * v->n);
    memset(v->z2, 0, sizeof(double) * v->n);
    memset(v->s, 0, sizeof(double) * v->n);
    for (int k = 0; k < v->n; k++)
        v->c[k] = 1.0;
}

void voices_destroy(voices_t *v)
{
    if (!v)
        return;
    free(v->inc);
    free(v->phase);
    free(v->z1);
    free(v->z2);
    free(v->c);
    free(v->s);
    free(v->cw);
    free(v->sw);
    free(v);
}

voices_t *voices_create(double sample_rate, int n, const double *freqs, double amp, double cutoff, double q)
{
#ifdef PEER_VOICES_INTERLEAVED
    if (n != PEER_NV)
        return NULL; /* built for another voice count */
#endif
    voices_t *v = calloc(1, sizeof(voices_t));
    if (!v)
        return NULL;
    v->n = n;
    v->amp = amp;
    v->inc = calloc(n, sizeof(double));
    v->phase = calloc(n, sizeof(double));
    v->z1 = calloc(n, sizeof(double));
    v->z2 = calloc(n, sizeof(double));
    v->c = calloc(n, sizeof(double));
    v->s = calloc(n, sizeof(double));
    v->cw = calloc(n, sizeof(double));
    v->sw = calloc(n, sizeof(double));
    if (!v->inc || !v->phase || !v->z1 || !v->z2 || !v->c || !v->s || !v->cw || !v->sw) {
        voices_destroy(v);
        return NULL;
    }
    for (int k = 0; k < n; k++) {
        v->inc[k] = freqs[k] / sample_rate;
        v->cw[k] = cos(2.0 * M_PI * v->inc[k]);
        v->sw[k] = sin(2.0 * M_PI * v->inc[k]);
    }
    double w0 = 2.0 * M_PI * cutoff / sample_rate;
    double c = cos(w0), alpha = sin(w0) / (2.0 * q), a0 = 1.0 + alpha;
    v->b0 = (1.0 - c) / 2.0 / a0;
    v->b1 = (1.0 - c) / a0;
    v->b2 = (1.0 - c) / 2.0 / a0;
    v->a1 = -2.0 * c / a0;
    v->a2 = (1.0 - alpha) / a0;
    voices_reset(v);
    return v;
}

#ifdef PEER_VOICES_INTERLEAVED
/* One block of n samples into out[0..n) (overwritten), all voices advanced sample by sample.
 * The voice count is a compile-time constant (PEER_NV) and the state is copied into local
 * arrays for the block: both are what lets gcc keep it out of aliasing trouble and vectorise
 * the voice loop (a whole-patch compiler knows both facts too). */
void voices_process_block(voices_t *restrict v, double *restrict out, int n)
{
    const double b0 = v->b0, b1 = v->b1, b2 = v->b2, a1 = v->a1, a2 = v->a2, amp = v->amp;
    double z1[PEER_NV], z2[PEER_NV];
#ifdef PEER_OSC_ROTATION
    double oc[PEER_NV], os[PEER_NV], cw[PEER_NV], sw[PEER_NV];
    for (int k = 0; k < PEER_NV; k++) {
        oc[k] = v->c[k];
        os[k] = v->s[k];
        cw[k] = v->cw[k];
        sw[k] = v->sw[k];
    }
#else
    double phase[PEER_NV], inc[PEER_NV];
    for (int k = 0; k < PEER_NV; k++) {
        phase[k] = v->phase[k];
        inc[k] = v->inc[k];
    }
#endif
    for (int k = 0; k < PEER_NV; k++) {
        z1[k] = v->z1[k];
        z2[k] = v->z2[k];
    }
    for (int i = 0; i < n; i++) {
        double acc = 0.0;
        for (int k = 0; k < PEER_NV; k++) {
#ifdef PEER_OSC_ROTATION
            double x = amp * os[k];
            double t = oc[k] * cw[k] - os[k] * sw[k];
            os[k] = os[k] * cw[k] + oc[k] * sw[k];
            oc[k] = t;
#else
            double x = amp * sin(2.0 * M_PI * phase[k]);
            double p = phase[k] + inc[k];
            phase[k] = p >= 1.0 ? p - 1.0 : p;
#endif
            double y = b0 * x + z1[k];
            z1[k] = b1 * x - a1 * y + z2[k];
            z2[k] = b2 * x - a2 * y;
            acc += y;
        }
        out[i] = acc;
    }
    for (int k = 0; k < PEER_NV; k++) {
#ifdef PEER_OSC_ROTATION
        double g = 1.5 - 0.5 * (oc[k] * oc[k] + os[k] * os[k]);
        v->c[k] = oc[k] * g;
        v->s[k] = os[k] * g;
#else
        v->phase[k] = phase[k];
#endif
        v->z1[k] = z1[k];
        v->z2[k] = z2[k];
    }
}
#else
/* One block of n samples into out[0..n) (overwritten). */
void voices_process_block(voices_t *restrict v, double *restrict out, int n)
{
    const double b0 = v->b0, b1 = v->b1, b2 = v->b2, a1 = v->a1, a2 = v->a2, amp = v->amp;
    for (int i = 0; i < n; i++)
        out[i] = 0.0;
    for (int k = 0; k < v->n; k++) {
        double z1 = v->z1[k], z2 = v->z2[k];
#ifdef PEER_OSC_ROTATION
        const double cw = v->cw[k], sw = v->sw[k];
        double oc = v->c[k], os = v->s[k];
#else
        const double inc = v->inc[k];
        double phase = v->phase[k];
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
            out[i] += y;
        }
#ifdef PEER_OSC_ROTATION
        double g = 1.5 - 0.5 * (oc * oc + os * os);
        v->c[k] = oc * g;
        v->s[k] = os * g;
#else
        v->phase[k] = phase;
#endif
        v->z1[k] = z1;
        v->z2[k] = z2;
    }
}
#endif

/* Render n samples from t = 0 in blocks of `block` (the last one may be shorter). */
void voices_render(voices_t *v, double *out, long n, int block)
{
    voices_reset(v);
    for (long i = 0; i < n; i += block) {
        long m = n - i < block ? n - i : block;
        voices_process_block(v, out + i, (int)m);
    }
}
