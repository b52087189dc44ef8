"""Named generators for a task's own randomness: seeded with the run, saved, restored and isolated."""
import torch

from sigplex.core.train.rng import generator, isolated_rng, rng_state, seed_everything, set_rng_state


def test_a_named_generator_is_seeded_saved_and_restored():
    seed_everything(7)
    first = torch.rand(3, generator=generator("augment"))
    assert not torch.equal(first, torch.rand(3, generator=generator("other")))  # names give separate streams
    saved = rng_state()
    expected = torch.rand(5, generator=generator("augment"))
    seed_everything(8)  # anything in between: another seed, more draws
    torch.rand(9, generator=generator("augment"))
    set_rng_state(saved)  # what resume does
    assert torch.equal(torch.rand(5, generator=generator("augment")), expected)
    seed_everything(7)
    assert torch.equal(torch.rand(3, generator=generator("augment")), first)


def test_validation_does_not_move_a_named_generator():
    seed_everything(1)
    before = generator("augment").get_state()
    with isolated_rng():
        torch.rand(4, generator=generator("augment"))
    assert torch.equal(generator("augment").get_state(), before)
