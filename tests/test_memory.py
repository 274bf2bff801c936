"""coursekit.memory: transformer activation bytes against Korthikanti et al. (2022) and the GPT-2 presets."""

import pytest

from coursekit import memory


def paper_formula(s, b, h, a, L, recompute):
    """Korthikanti et al. (2022), Table 2 (activation memory per layer, no tensor parallelism): sbh(34 + 5as/h)
    with no recomputation, 34 sbh with selective and 2 sbh with full recomputation, in bytes."""
    per_layer = {"none": s * b * h * 34 + 5 * a * s * s * b, "selective": 34 * s * b * h, "full": 2 * s * b * h}
    return per_layer[recompute] * L


@pytest.mark.parametrize("recompute", memory.RECOMPUTE)
@pytest.mark.parametrize(
    "s, b, h, a, L",
    [
        (1024, 32, 1600, 25, 48),  # GPT-2 XL as in ZeRO's example
        (2048, 1, 12288, 96, 96),  # GPT-3 175B, one of the paper's model configurations
        (2048, 1, 6144, 64, 48),  # the paper's 22B model
        (7, 3, 10, 5, 2),  # small and odd
    ],
)
def test_sixteen_bit_activations_follow_the_paper(s, b, h, a, L, recompute):
    assert memory.transformer_activation_bytes(s, b, h, a, L, recompute) == paper_formula(s, b, h, a, L, recompute)


def test_gpt2_xl_by_hand():
    # s b h = 1024 * 32 * 1600 = 52 428 800; 5 a s / h = 5 * 25 * 1024 / 1600 = 80; 48 layers
    assert memory.transformer_activation_bytes(1024, 32, 1600, 25, 48) == 52_428_800 * (34 + 80) * 48 == 286_890_393_600
    assert memory.transformer_activation_bytes(1024, 32, 1600, 25, 48, "selective") == 85_563_801_600
    assert memory.transformer_activation_bytes(1024, 32, 1600, 25, 48, "full") == 5_033_164_800
    # ZeRO's "60 GB" is 12 s b h L values of 2 bytes: the attention matrices left out
    assert 12 * 52_428_800 * 48 * 2 == pytest.approx(60e9, rel=0.01)


def test_gpt3_per_layer_by_hand():
    # s b h = 2048 * 12288 = 25 165 824; 5 a s / h = 5 * 96 * 2048 / 12288 = 80: 114 s b h, about 2.87 GB a layer
    assert memory.transformer_activation_bytes(2048, 1, 12288, 96, 1) == 25_165_824 * 114 == 2_868_903_936


def test_the_table_of_terms_adds_up_to_the_paper_coefficients():
    def total(unit, kind):
        return sum(count for _, count, u, k in memory._LAYER_TENSORS if (u, k) == (unit, kind))

    # 16 values and 2 masks of size sbh: 16 * 2 + 2 = 34; 2 values and 1 mask of size a s^2 b: 2 * 2 + 1 = 5
    assert (total("sbh", "value"), total("sbh", "mask"), total("as2b", "value"), total("as2b", "mask")) == (16, 2, 2, 1)


def test_other_precisions_scale_the_values_but_not_the_byte_masks():
    s, b, h, a = 128, 2, 64, 4
    sbh, as2b = s * b * h, a * s * s * b
    assert memory.transformer_activation_bytes(s, b, h, a, 1, bytes_per_value=4) == 66 * sbh + 9 * as2b
    assert memory.transformer_activation_bytes(s, b, h, a, 1, "selective", bytes_per_value=1) == 18 * sbh
    assert memory.transformer_activation_bytes(s, b, h, a, 3, "full", bytes_per_value=4) == 4 * sbh * 3


def test_recomputation_orders_memory():
    config = memory.GPT2_PRESETS["medium"]
    sizes = [
        memory.transformer_activation_bytes(config.seq_len, 8, config.hidden, config.heads, config.layers, r)
        for r in ("none", "selective", "full")
    ]
    assert sizes[0] > sizes[1] > sizes[2]


@pytest.mark.parametrize(
    "name, parameters", [("small", 124_439_808), ("medium", 354_823_168), ("large", 774_030_080), ("xl", 1_557_611_200)]
)
def test_gpt2_presets_have_the_released_parameter_counts(name, parameters):
    config = memory.GPT2_PRESETS[name]
    h = config.hidden
    # per block: attention 4h^2 + 4h, MLP 8h^2 + 5h, two layer norms 4h; then token and position
    # embeddings and the final layer norm (the output layer shares the token embedding)
    count = config.layers * (12 * h * h + 13 * h) + config.vocab * h + config.seq_len * h + 2 * h
    assert count == parameters
    assert (config.vocab, config.seq_len, h % config.heads, h // config.heads) == (50257, 1024, 0, 64)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="seq_len must be a positive integer, got 0"):
        memory.transformer_activation_bytes(0, 1, 8, 2, 1)
    with pytest.raises(ValueError, match="batch must be a positive integer"):
        memory.transformer_activation_bytes(4, 1.5, 8, 2, 1)
    with pytest.raises(ValueError, match="divisible by heads"):
        memory.transformer_activation_bytes(4, 1, 10, 3, 1)
    with pytest.raises(ValueError, match="unknown recompute 'partial'"):
        memory.transformer_activation_bytes(4, 1, 8, 2, 1, "partial")
    with pytest.raises(ValueError, match="bytes_per_value"):
        memory.transformer_activation_bytes(4, 1, 8, 2, 1, bytes_per_value=0)
