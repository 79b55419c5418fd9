namespace HeteroBatch.Engine.Models;

/// <summary>The arithmetic a unit runs a model in. Part of a unit: gpu0 at Fp16 is not gpu0 at Fp32 (its own fingerprint, profiles and plans).</summary>
public enum Precision
{
    /// <summary>IEEE float32 throughout (TF32 tensor-core math off).</summary>
    Fp32,
    /// <summary>The float32 model with TF32 tensor-core math in convolutions and matrix products (NVIDIA GPUs): about 10 bits of mantissa there.</summary>
    Tf32,
    /// <summary>The model converted to fp16 (inputs and outputs stay float32, casts at the edges; reductions and exponentials kept in fp32).</summary>
    Fp16,
}
