using System.Buffers.Binary;

namespace SharpTune.Export;

/// <summary>
/// Row quantization into ggml's block layouts, bit for bit as ggml-quants.c's reference quantizers
/// (quantize_row_*_ref: what llama-quantize writes without an importance matrix). Every float operation keeps the C
/// code's single-precision order, so the bytes equal llama.cpp's. Dequantizers mirror dequantize_row_* for the checks.
/// </summary>
public static class GgmlQuants
{
    private const float GroupMaxEps = 1e-15f;

    /// <summary>Quantizes one row (its length a multiple of the type's block size) into <paramref name="dst"/>.</summary>
    public static void QuantizeRow(GgmlType type, ReadOnlySpan<float> x, Span<byte> dst)
    {
        int blockSize = GgmlTypes.BlockSize(type), blockBytes = GgmlTypes.BlockBytes(type);
        if (x.Length % blockSize != 0) throw new ArgumentException($"row of {x.Length} is not a multiple of {blockSize}");
        for (int b = 0; b < x.Length / blockSize; b++)
        {
            var xb = x.Slice(b * blockSize, blockSize);
            var yb = dst.Slice(b * blockBytes, blockBytes);
            switch (type)
            {
                case GgmlType.F32: BinaryPrimitives.WriteSingleLittleEndian(yb, xb[0]); break;
                case GgmlType.F16: WriteHalf(yb, xb[0]); break;
                case GgmlType.BF16: BinaryPrimitives.WriteUInt16LittleEndian(yb, ToBf16(xb[0])); break;
                case GgmlType.Q8_0: Q8_0(xb, yb); break;
                case GgmlType.Q4_0: Q4_0(xb, yb); break;
                case GgmlType.Q5_0: Q5_0(xb, yb); break;
                case GgmlType.Q5_1: Q5_1(xb, yb); break;
                case GgmlType.Q4_K: Q4K(xb, yb, bits: 4); break;
                case GgmlType.Q5_K: Q4K(xb, yb, bits: 5); break;
                case GgmlType.Q6_K: Q6K(xb, yb); break;
                default: throw new ArgumentOutOfRangeException(nameof(type));
            }
        }
    }

    /// <summary>ggml_compute_fp32_to_bf16: round to nearest even, NaN kept quiet.</summary>
    public static ushort ToBf16(float f)
    {
        uint u = BitConverter.SingleToUInt32Bits(f);
        if ((u & 0x7fffffff) > 0x7f800000) return (ushort)((u >> 16) | 64);
        return (ushort)((u + (0x7fff + ((u >> 16) & 1))) >> 16);
    }

    public static float FromBf16(ushort h) => BitConverter.UInt32BitsToSingle((uint)h << 16);

    /// <summary>GGML_FP32_TO_FP16 rounds to nearest even, as (Half) does.</summary>
    private static void WriteHalf(Span<byte> dst, float value) => BinaryPrimitives.WriteHalfLittleEndian(dst, (Half)value);
    private static float ReadHalf(ReadOnlySpan<byte> src) => (float)BinaryPrimitives.ReadHalfLittleEndian(src);

    /// <summary>ggml's nearest_int: the 1.5·2^23 trick, which rounds half to even.</summary>
    private static int NearestInt(float fval)
    {
        float val = fval + 12582912f;
        int i = BitConverter.SingleToInt32Bits(val);
        return (i & 0x007fffff) - 0x00400000;
    }

    private static void Q8_0(ReadOnlySpan<float> x, Span<byte> y)
    {
        float amax = 0;
        foreach (var v in x) amax = Math.Max(amax, MathF.Abs(v));
        float d = amax / ((1 << 7) - 1);
        float id = d != 0 ? 1.0f / d : 0.0f;
        WriteHalf(y, d);
        for (int j = 0; j < 32; j++) y[2 + j] = (byte)(sbyte)MathF.Round(x[j] * id, MidpointRounding.AwayFromZero);
    }

    /// <summary>The value of largest magnitude (its sign kept), as q4_0/q5_0 take it.</summary>
    private static float SignedAbsMax(ReadOnlySpan<float> x)
    {
        float amax = 0, max = 0;
        foreach (var v in x)
        {
            if (amax < MathF.Abs(v))
            {
                amax = MathF.Abs(v);
                max = v;
            }
        }
        return max;
    }

    // q4_0: element j of the block sits in the low nibble of byte j, element j + 16 in its high nibble.
    private static void Q4_0(ReadOnlySpan<float> x, Span<byte> y)
    {
        float d = SignedAbsMax(x) / -8;
        float id = d != 0 ? 1.0f / d : 0.0f;
        WriteHalf(y, d);
        for (int j = 0; j < 16; j++)
        {
            byte xi0 = (byte)Math.Min(15, (int)(sbyte)(x[j] * id + 8.5f));
            byte xi1 = (byte)Math.Min(15, (int)(sbyte)(x[16 + j] * id + 8.5f));
            y[2 + j] = (byte)(xi0 | (xi1 << 4));
        }
    }

    private static void Q5_0(ReadOnlySpan<float> x, Span<byte> y)
    {
        float d = SignedAbsMax(x) / -16;
        float id = d != 0 ? 1.0f / d : 0.0f;
        WriteHalf(y, d);
        uint qh = 0;
        for (int j = 0; j < 16; j++)
        {
            byte xi0 = (byte)Math.Min(31, (int)(sbyte)(x[j] * id + 16.5f));
            byte xi1 = (byte)Math.Min(31, (int)(sbyte)(x[16 + j] * id + 16.5f));
            y[6 + j] = (byte)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
            qh |= (uint)((xi0 & 0x10) >> 4) << j;
            qh |= (uint)((xi1 & 0x10) >> 4) << (j + 16);
        }
        BinaryPrimitives.WriteUInt32LittleEndian(y[2..], qh);
    }

    private static void Q5_1(ReadOnlySpan<float> x, Span<byte> y)
    {
        float min = float.MaxValue, max = -float.MaxValue;
        foreach (var v in x)
        {
            if (v < min) min = v;
            if (v > max) max = v;
        }
        float d = (max - min) / ((1 << 5) - 1);
        float id = d != 0 ? 1.0f / d : 0.0f;
        WriteHalf(y, d);
        WriteHalf(y[2..], min);
        uint qh = 0;
        for (int j = 0; j < 16; j++)
        {
            byte xi0 = (byte)((x[j] - min) * id + 0.5f);
            byte xi1 = (byte)((x[16 + j] - min) * id + 0.5f);
            y[8 + j] = (byte)((xi0 & 0x0F) | ((xi1 & 0x0F) << 4));
            qh |= (uint)((xi0 & 0x10) >> 4) << j;
            qh |= (uint)((xi1 & 0x10) >> 4) << (j + 16);
        }
        BinaryPrimitives.WriteUInt32LittleEndian(y[4..], qh);
    }

    /// <summary>make_qkx2_quants: scale and min of a sub-block with weighted least squares over a few scale tries.</summary>
    private static float MakeQkx2(int n, int nmax, ReadOnlySpan<float> x, ReadOnlySpan<float> weights, Span<byte> L, out float theMin,
        Span<byte> laux, float rmin, float rdelta, int nstep)
    {
        float min = x[0], max = x[0];
        float sumW = weights[0];
        float sumX = sumW * x[0];
        for (int i = 1; i < n; i++)
        {
            if (x[i] < min) min = x[i];
            if (x[i] > max) max = x[i];
            float w = weights[i];
            sumW += w;
            sumX += w * x[i];
        }
        if (min > 0) min = 0;
        if (max == min)
        {
            L[..n].Clear();
            theMin = -min;
            return 0;
        }
        float iscale = nmax / (max - min);
        float scale = 1 / iscale;
        float bestError = 0;
        for (int i = 0; i < n; i++)
        {
            int l = NearestInt(iscale * (x[i] - min));
            L[i] = (byte)Math.Max(0, Math.Min(nmax, l));
            float diff = scale * L[i] + min - x[i];
            bestError += weights[i] * (diff * diff);
        }
        for (int step = 0; step <= nstep; step++)
        {
            iscale = (rmin + rdelta * step + nmax) / (max - min);
            float sumL = 0, sumL2 = 0, sumXL = 0;
            for (int i = 0; i < n; i++)
            {
                int l = Math.Max(0, Math.Min(nmax, NearestInt(iscale * (x[i] - min))));
                laux[i] = (byte)l;
                float w = weights[i];
                sumL += w * l;
                sumL2 += w * l * l;
                sumXL += w * l * x[i];
            }
            float D = sumW * sumL2 - sumL * sumL;
            if (D > 0)
            {
                float thisScale = (sumW * sumXL - sumX * sumL) / D;
                float thisMin = (sumL2 * sumX - sumL * sumXL) / D;
                if (thisMin > 0)
                {
                    thisMin = 0;
                    thisScale = sumXL / sumL2;
                }
                float error = 0;
                for (int i = 0; i < n; i++)
                {
                    float diff = thisScale * laux[i] + thisMin - x[i];
                    error += weights[i] * (diff * diff);
                }
                if (error < bestError)
                {
                    laux[..n].CopyTo(L);
                    bestError = error;
                    scale = thisScale;
                    min = thisMin;
                }
            }
        }
        theMin = -min;
        return scale;
    }

    /// <summary>get_scale_min_k4: the 6-bit scale and min of sub-block j from the 12 packed bytes.</summary>
    private static (byte Scale, byte Min) ScaleMinK4(int j, ReadOnlySpan<byte> q) => j < 4
        ? ((byte)(q[j] & 63), (byte)(q[j + 4] & 63))
        : ((byte)((q[j + 4] & 0xF) | ((q[j - 4] >> 6) << 4)), (byte)((q[j + 4] >> 4) | ((q[j] >> 6) << 4)));

    /// <summary>
    /// quantize_row_q4_K_ref (bits 4) and quantize_row_q5_K_ref (bits 5): 8 sub-blocks of 32 with 6-bit scales and mins
    /// under fp16 super-block factors d and dmin. Layout: d, dmin, scales[12], (q5: qh[32]), qs[128].
    /// </summary>
    private static void Q4K(ReadOnlySpan<float> x, Span<byte> y, int bits)
    {
        int nmax = (1 << bits) - 1;
        Span<byte> L = stackalloc byte[256];
        Span<byte> laux = stackalloc byte[32];
        Span<float> weights = stackalloc float[32];
        Span<float> mins = stackalloc float[8];
        Span<float> scales = stackalloc float[8];
        float maxScale = 0, maxMin = 0;
        for (int j = 0; j < 8; j++)
        {
            var xs = x.Slice(32 * j, 32);
            float sumX2 = 0;
            for (int l = 0; l < 32; l++) sumX2 += xs[l] * xs[l];
            float avX = MathF.Sqrt(sumX2 / 32);
            for (int l = 0; l < 32; l++) weights[l] = avX + MathF.Abs(xs[l]);
            scales[j] = bits == 4
                ? MakeQkx2(32, nmax, xs, weights, L.Slice(32 * j, 32), out mins[j], laux, -1f, 0.1f, 20)
                : MakeQkx2(32, nmax, xs, weights, L.Slice(32 * j, 32), out mins[j], laux, -0.5f, 0.1f, 15);
            if (scales[j] > maxScale) maxScale = scales[j];
            if (mins[j] > maxMin) maxMin = mins[j];
        }
        var packed = y.Slice(4, 12);
        packed.Clear();
        float invScale = maxScale > 0 ? 63f / maxScale : 0f;
        float invMin = maxMin > 0 ? 63f / maxMin : 0f;
        for (int j = 0; j < 8; j++)
        {
            byte ls = (byte)Math.Min(63, (int)(byte)NearestInt(invScale * scales[j]));
            byte lm = (byte)Math.Min(63, (int)(byte)NearestInt(invMin * mins[j]));
            if (j < 4)
            {
                packed[j] = ls;
                packed[j + 4] = lm;
            }
            else
            {
                packed[j + 4] = (byte)((ls & 0xF) | ((lm & 0xF) << 4));
                packed[j - 4] |= (byte)((ls >> 4) << 6);
                packed[j] |= (byte)((lm >> 4) << 6);
            }
        }
        WriteHalf(y, maxScale / 63f);
        WriteHalf(y[2..], maxMin / 63f);
        float dAll = ReadHalf(y), dminAll = ReadHalf(y[2..]);
        for (int j = 0; j < 8; j++)
        {
            var (sc, m) = ScaleMinK4(j, packed);
            float d = dAll * sc;
            if (d == 0) continue;
            float dm = dminAll * m;
            for (int ii = 0; ii < 32; ii++)
                L[32 * j + ii] = (byte)Math.Max(0, Math.Min(nmax, NearestInt((x[32 * j + ii] + dm) / d)));
        }
        if (bits == 4)
        {
            var q = y.Slice(16, 128);
            for (int j = 0, o = 0; j < 256; j += 64, o += 32)
                for (int l = 0; l < 32; l++) q[o + l] = (byte)(L[j + l] | (L[j + l + 32] << 4));
            return;
        }
        var qh = y.Slice(16, 32);
        var ql = y.Slice(48, 128);
        qh.Clear();
        byte m1 = 1, m2 = 2;
        for (int n = 0, o = 0; n < 256; n += 64, o += 32)
        {
            for (int j = 0; j < 32; j++)
            {
                int l1 = L[n + j], l2 = L[n + j + 32];
                if (l1 > 15) { l1 -= 16; qh[j] |= m1; }
                if (l2 > 15) { l2 -= 16; qh[j] |= m2; }
                ql[o + j] = (byte)(l1 | (l2 << 4));
            }
            m1 <<= 2;
            m2 <<= 2;
        }
    }

    /// <summary>make_qx_quants with rmse_type 1 and no importance weights (weights x²), as q6_K uses it.</summary>
    private static float MakeQx(int n, int nmax, ReadOnlySpan<float> x, Span<sbyte> L)
    {
        float max = 0, amax = 0;
        for (int i = 0; i < n; i++)
        {
            float ax = MathF.Abs(x[i]);
            if (ax > amax) { amax = ax; max = x[i]; }
        }
        if (amax < GroupMaxEps)
        {
            L[..n].Clear();
            return 0;
        }
        float iscale = -nmax / max;
        float sumLX = 0, sumL2 = 0;
        for (int i = 0; i < n; i++)
        {
            int l = Math.Max(-nmax, Math.Min(nmax - 1, NearestInt(iscale * x[i])));
            L[i] = (sbyte)(l + nmax);
            float w = x[i] * x[i];
            sumLX += w * x[i] * l;
            sumL2 += w * l * l;
        }
        float scale = sumL2 != 0 ? sumLX / sumL2 : 0.0f;
        float best = scale * sumLX;
        for (int step = -9; step <= 9; step++)
        {
            if (step == 0) continue;
            iscale = -(nmax + 0.1f * step) / max;
            sumLX = sumL2 = 0;
            for (int i = 0; i < n; i++)
            {
                int l = Math.Max(-nmax, Math.Min(nmax - 1, NearestInt(iscale * x[i])));
                float w = x[i] * x[i];
                sumLX += w * x[i] * l;
                sumL2 += w * l * l;
            }
            if (sumL2 > 0 && sumLX * sumLX > best * sumL2)
            {
                for (int i = 0; i < n; i++)
                    L[i] = (sbyte)(nmax + Math.Max(-nmax, Math.Min(nmax - 1, NearestInt(iscale * x[i]))));
                scale = sumLX / sumL2;
                best = scale * sumLX;
            }
        }
        return scale;
    }

    /// <summary>quantize_row_q6_K_ref: 16 sub-blocks of 16 with int8 scales. Layout: ql[128], qh[64], scales[16], d.</summary>
    private static void Q6K(ReadOnlySpan<float> x, Span<byte> y)
    {
        Span<sbyte> L = stackalloc sbyte[256];
        Span<float> scales = stackalloc float[16];
        float maxScale = 0, maxAbsScale = 0;
        for (int ib = 0; ib < 16; ib++)
        {
            float scale = MakeQx(16, 32, x.Slice(16 * ib, 16), L.Slice(16 * ib, 16));
            scales[ib] = scale;
            float abs = MathF.Abs(scale);
            if (abs > maxAbsScale)
            {
                maxAbsScale = abs;
                maxScale = scale;
            }
        }
        if (maxAbsScale < GroupMaxEps)
        {
            y.Clear();
            return;
        }
        float iscale = -128f / maxScale;
        WriteHalf(y[208..], 1 / iscale);
        var sc = y.Slice(192, 16);
        for (int ib = 0; ib < 16; ib++) sc[ib] = (byte)(sbyte)Math.Min(127, NearestInt(iscale * scales[ib]));
        float dAll = ReadHalf(y[208..]);
        for (int j = 0; j < 16; j++)
        {
            float d = dAll * (sbyte)sc[j];
            if (d == 0) continue;
            for (int ii = 0; ii < 16; ii++)
                L[16 * j + ii] = (sbyte)(Math.Max(-32, Math.Min(31, NearestInt(x[16 * j + ii] / d))) + 32);
        }
        var ql = y[..128];
        var qh = y.Slice(128, 64);
        for (int j = 0, lo = 0, ho = 0; j < 256; j += 128, lo += 64, ho += 32)
        {
            for (int l = 0; l < 32; l++)
            {
                int q1 = L[j + l] & 0xF, q2 = L[j + l + 32] & 0xF, q3 = L[j + l + 64] & 0xF, q4 = L[j + l + 96] & 0xF;
                ql[lo + l] = (byte)(q1 | (q3 << 4));
                ql[lo + l + 32] = (byte)(q2 | (q4 << 4));
                qh[ho + l] = (byte)((L[j + l] >> 4) | ((L[j + l + 32] >> 4) << 2) | ((L[j + l + 64] >> 4) << 4) | ((L[j + l + 96] >> 4) << 6));
            }
        }
    }

    /// <summary>Dequantizes a row of <paramref name="count"/> elements (dequantize_row_*), for checks and tests.</summary>
    public static float[] DequantizeRow(GgmlType type, ReadOnlySpan<byte> src, int count)
    {
        var y = new float[count];
        int blockSize = GgmlTypes.BlockSize(type), blockBytes = GgmlTypes.BlockBytes(type);
        for (int b = 0; b < count / blockSize; b++)
        {
            var x = src.Slice(b * blockBytes, blockBytes);
            var o = y.AsSpan(b * blockSize, blockSize);
            switch (type)
            {
                case GgmlType.F32: o[0] = BinaryPrimitives.ReadSingleLittleEndian(x); break;
                case GgmlType.F16: o[0] = ReadHalf(x); break;
                case GgmlType.BF16: o[0] = FromBf16(BinaryPrimitives.ReadUInt16LittleEndian(x)); break;
                case GgmlType.Q8_0:
                    for (int j = 0; j < 32; j++) o[j] = (sbyte)x[2 + j] * ReadHalf(x);
                    break;
                case GgmlType.Q4_0:
                    for (int j = 0; j < 16; j++)
                    {
                        o[j] = ((x[2 + j] & 0x0F) - 8) * ReadHalf(x);
                        o[j + 16] = ((x[2 + j] >> 4) - 8) * ReadHalf(x);
                    }
                    break;
                case GgmlType.Q5_0:
                case GgmlType.Q5_1:
                {
                    bool q51 = type == GgmlType.Q5_1;
                    float d = ReadHalf(x), m = q51 ? ReadHalf(x[2..]) : 0;
                    uint qh = BinaryPrimitives.ReadUInt32LittleEndian(x[(q51 ? 4 : 2)..]);
                    var qs = x[(q51 ? 8 : 6)..];
                    int offset = q51 ? 0 : 16;
                    for (int j = 0; j < 16; j++)
                    {
                        int h0 = (int)((qh >> j) << 4) & 0x10, h1 = (int)(qh >> (j + 12)) & 0x10;
                        o[j] = (((qs[j] & 0x0F) | h0) - offset) * d + m;
                        o[j + 16] = (((qs[j] >> 4) | h1) - offset) * d + m;
                    }
                    break;
                }
                case GgmlType.Q4_K:
                case GgmlType.Q5_K:
                {
                    bool q5 = type == GgmlType.Q5_K;
                    float d = ReadHalf(x), min = ReadHalf(x[2..]);
                    var scales = x.Slice(4, 12);
                    var qh = q5 ? x.Slice(16, 32) : default;
                    var q = x[(q5 ? 48 : 16)..];
                    int outIndex = 0;
                    for (int j = 0, isb = 0, qo = 0, u = 0; j < 256; j += 64, isb += 2, qo += 32, u += 2)
                    {
                        var (s1, m1) = ScaleMinK4(isb, scales);
                        var (s2, m2) = ScaleMinK4(isb + 1, scales);
                        for (int l = 0; l < 32; l++) o[outIndex++] = d * s1 * ((q[qo + l] & 0xF) + (q5 && (qh[l] & (1 << u)) != 0 ? 16 : 0)) - min * m1;
                        for (int l = 0; l < 32; l++) o[outIndex++] = d * s2 * ((q[qo + l] >> 4) + (q5 && (qh[l] & (2 << u)) != 0 ? 16 : 0)) - min * m2;
                    }
                    break;
                }
                case GgmlType.Q6_K:
                {
                    float d = ReadHalf(x[208..]);
                    for (int n = 0; n < 2; n++)
                    {
                        var ql = x.Slice(64 * n, 64);
                        var qh = x.Slice(128 + 32 * n, 32);
                        var sc = x.Slice(192 + 8 * n, 8);
                        for (int l = 0; l < 32; l++)
                        {
                            int isb = l / 16;
                            int q1 = ((ql[l] & 0xF) | (((qh[l] >> 0) & 3) << 4)) - 32;
                            int q2 = ((ql[l + 32] & 0xF) | (((qh[l] >> 2) & 3) << 4)) - 32;
                            int q3 = ((ql[l] >> 4) | (((qh[l] >> 4) & 3) << 4)) - 32;
                            int q4 = ((ql[l + 32] >> 4) | (((qh[l] >> 6) & 3) << 4)) - 32;
                            o[128 * n + l] = d * (sbyte)sc[isb] * q1;
                            o[128 * n + l + 32] = d * (sbyte)sc[isb + 2] * q2;
                            o[128 * n + l + 64] = d * (sbyte)sc[isb + 4] * q3;
                            o[128 * n + l + 96] = d * (sbyte)sc[isb + 6] * q4;
                        }
                    }
                    break;
                }
                default: throw new ArgumentOutOfRangeException(nameof(type));
            }
        }
        return y;
    }
}
