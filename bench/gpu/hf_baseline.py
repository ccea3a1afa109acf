#!/usr/bin/env python3
"""transformers + PEFT baseline for issue #11, measured the way `SharpTune.Bench gpu-train` measures SharpTune.

Llama preset shape (default Llama-3.1-8B) with random bf16 weights on one GPU, sdpa attention, gradient checkpointing,
sequence 8192, torch AdamW: LoRA r16 on all linear layers with micro-batch 2, and a full fine-tune with micro-batch 1
(bf16 weights, gradients and AdamW state). Prints s/step, tokens/s, peak allocated/reserved GiB and MFU (model FLOPs per
token 6N + 6·L·d·T, recompute not counted). Run on the GPU machine:  python3 bench/gpu/hf_baseline.py [lora,full] [8192] [4]
"""
import sys, time
import torch
from transformers import LlamaConfig, LlamaForCausalLM

SHAPE = dict(vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
             num_key_value_heads=8, max_position_embeddings=131072, rms_norm_eps=1e-5, rope_theta=500000.0,
             rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                           "original_max_position_embeddings": 8192}, tie_word_embeddings=False)
PEAK_TFLOPS = 989.0  # H100 SXM bf16 dense


def run(kind, seq, steps):
    torch.manual_seed(1)
    config = LlamaConfig(**SHAPE, attn_implementation="sdpa", use_cache=False)
    with torch.device("cuda"):
        model = LlamaForCausalLM(config).to(torch.bfloat16)
    n_params = sum(p.numel() for p in model.parameters())
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    micro_batch = 2 if kind == "lora" else 1
    if kind == "lora":
        from peft import LoraConfig, get_peft_model
        model.enable_input_require_grads()
        model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules="all-linear"))
    model.train()
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-5)
    ids = torch.randint(3, SHAPE["vocab_size"], (micro_batch, seq), device="cuda")
    torch.cuda.reset_peak_memory_stats()
    times = []
    for step in range(steps):
        torch.cuda.synchronize()
        start = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    step_s = sum(times[1:]) / len(times[1:])
    tokens_s = micro_batch * (seq - 1) / step_s
    flops_per_token = 6.0 * n_params + 6.0 * SHAPE["num_hidden_layers"] * SHAPE["hidden_size"] * seq
    mfu = tokens_s * flops_per_token / (PEAK_TFLOPS * 1e12)
    print(f"  hf {kind:<5} {step_s:7.2f} s/step  {tokens_s:9.0f} tokens/s  peak allocated {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB"
          f"  reserved {torch.cuda.max_memory_reserved() / 2**30:.1f} GiB  MFU {100 * mfu:.1f}% of {PEAK_TFLOPS:.0f} TFLOP/s"
          f"  (micro-batch {micro_batch}, {n_params / 1e9:.2f}B parameters)")
    del model, optimizer
    torch.cuda.empty_cache()


if __name__ == "__main__":
    kinds = (sys.argv[1] if len(sys.argv) > 1 else "lora,full").split(",")
    seq = int(sys.argv[2]) if len(sys.argv) > 2 else 8192
    steps = int(sys.argv[3]) if len(sys.argv) > 3 else 4
    import transformers, peft
    print(f"torch {torch.__version__}, transformers {transformers.__version__}, peft {peft.__version__}, {torch.cuda.get_device_name()}")
    for kind in kinds:
        run(kind, seq, steps)
