import pytest

from tests.helpers import needs_smollm2, smollm2


@needs_smollm2
@pytest.mark.parametrize(
    "text", ["Hello world!", " = Valkyria Chronicles III = \n", "1 @,@ 000 km", "naïve 日本"]
)
def test_round_trip(text):
    tok = smollm2().tokenizer
    assert tok.decode(tok.encode(text)) == text


@needs_smollm2
def test_digits_split_one_by_one_like_smollm2():
    tok = smollm2().tokenizer
    assert len(tok.encode("12345")) == 5


@needs_smollm2
def test_special_tokens_and_chat_template():
    tok = smollm2().tokenizer
    text = tok.apply_chat_template([{"role": "user", "content": "Hi"}])
    assert text.endswith("<|im_start|>assistant\n")
    ids = tok.encode("<|im_start|>user")
    assert ids[0] == tok.token_to_id("<|im_start|>")
    assert tok.token_to_id("<|im_end|>") in tok.stop_ids()
