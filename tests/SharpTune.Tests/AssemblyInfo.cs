// libtorch's random generator is process-wide: seeded training runs (dropout, LoRA init, exact resume) are only
// reproducible when no other test draws from it at the same time, so tests run one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
