"""Serializers of the ledger's public endpoints: block headers and validators (hashes and keys only)."""

from rest_framework import serializers

from bank.hashing import epoch_micros
from bank.models import Block, ValidatorKey


class ValidatorSerializer(serializers.ModelSerializer):
    class Meta:
        model = ValidatorKey
        fields = ["name", "public_key", "proof_of_possession", "is_active"]


class BlockSerializer(serializers.ModelSerializer):
    sealed_at_us = serializers.SerializerMethodField(help_text="The header's time: microseconds since 1970 UTC.")
    signers = serializers.SerializerMethodField(help_text="Public keys of the validators in the aggregate.")

    class Meta:
        model = Block
        fields = [
            "version",
            "height",
            "prev_hash",
            "merkle_root",
            "sealed_at",
            "sealed_at_us",
            "entry_count",
            "document_count",
            "hash",
            "aggregate_signature",
            "signers",
        ]

    def get_sealed_at_us(self, block) -> int:
        return epoch_micros(block.sealed_at)

    def get_signers(self, block) -> list[str]:
        return [a.validator.public_key for a in block.attestations.all()]
