"""Text corpora the project generates itself (no download): the synthetic biographies (bioS)."""

from training.corpora.biographies import (
    ATTRIBUTES, Augmentation, Biography, PeopleSplit, Person, QAPair, Span, biographies,
    bios_corpus, make_people, person_columns, qa_pairs, read_biographies, shuffled,
    split_people, token_index, write_corpus)

__all__ = ["ATTRIBUTES", "Augmentation", "Biography", "PeopleSplit", "Person", "QAPair", "Span",
           "biographies", "bios_corpus", "make_people", "person_columns", "qa_pairs",
           "read_biographies", "shuffled", "split_people", "token_index", "write_corpus"]
