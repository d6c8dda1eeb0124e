"""Notarizing document digests: one record per digest and kind, typed refusals, a safe race."""

import hashlib
import threading

import pytest
from django.db import IntegrityError, connection, connections, transaction

from bank import services
from bank.errors import InvalidDigest, InvalidDocumentKind, InvalidDocumentReference
from bank.models import ImmutableRowError, NotarizedDocument


def sha(text: str) -> bytes:
    return hashlib.sha256(text.encode()).digest()


@pytest.mark.django_db
def test_notarize_records_the_digest_kind_and_reference_unsealed():
    # when
    document = services.notarize(digest=sha("video-1"), kind="safety.video", reference="report-17")
    # then
    stored = NotarizedDocument.objects.get()
    assert stored.pk == document.pk
    assert (bytes(stored.digest), stored.kind, stored.reference) == (sha("video-1"), "safety.video", "report-17")
    assert stored.block_id is None and stored.leaf_index is None


@pytest.mark.django_db
def test_the_same_digest_and_kind_again_returns_the_first_record_with_its_time():
    # given
    first = services.notarize(digest=sha("event"), kind="coldchain.event", reference="epcis-1")
    # when
    again = services.notarize(digest=sha("event"), kind="coldchain.event", reference="epcis-2")
    # then
    assert again.pk == first.pk
    assert (again.created_at, again.reference) == (first.created_at, "epcis-1")
    assert NotarizedDocument.objects.count() == 1


@pytest.mark.django_db
def test_the_same_digest_under_another_kind_is_another_record():
    services.notarize(digest=sha("x"), kind="coldchain.event", reference="a")
    services.notarize(digest=sha("x"), kind="audit.event", reference="a")
    assert NotarizedDocument.objects.count() == 2


@pytest.mark.django_db
@pytest.mark.parametrize("digest", [b"", b"\x00" * 31, b"\x00" * 33, "00" * 32, None])
def test_a_digest_that_is_not_32_bytes_is_refused(digest):
    with pytest.raises(InvalidDigest) as refused:
        services.notarize(digest=digest, kind="audit.event", reference="r")
    assert refused.value.code == "invalid_digest"
    assert not NotarizedDocument.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "kind", ["", "video", "Safety.video", "safety.", ".video", "safety video", "safety.vidéo", "a." + "b" * 39, 7]
)
def test_a_kind_that_is_not_dotted_lowercase_words_is_refused(kind):
    with pytest.raises(InvalidDocumentKind) as refused:
        services.notarize(digest=sha("d"), kind=kind, reference="r")
    assert refused.value.code == "invalid_document_kind"


@pytest.mark.django_db
@pytest.mark.parametrize("reference", ["", "Kim Minsu", "a\x00b", "-lead", "x" * 65, "이름", None])
def test_a_reference_that_is_not_a_short_opaque_id_is_refused(reference):
    with pytest.raises(InvalidDocumentReference) as refused:
        services.notarize(digest=sha("d"), kind="audit.event", reference=reference)
    assert refused.value.code == "invalid_document_reference"


@pytest.mark.django_db
def test_a_notarized_document_cannot_be_edited_or_deleted():
    document = services.notarize(digest=sha("d"), kind="audit.event", reference="r")
    document.reference = "other"
    with pytest.raises(ImmutableRowError):
        document.save()
    with pytest.raises(ImmutableRowError):
        document.delete()


@pytest.mark.django_db
def test_on_postgresql_the_database_refuses_an_edit_other_than_sealing():
    if connection.vendor != "postgresql":
        pytest.skip("the append-only trigger is PostgreSQL's")
    document = services.notarize(digest=sha("d"), kind="audit.event", reference="r")
    with pytest.raises(IntegrityError), transaction.atomic():
        NotarizedDocument.objects.filter(pk=document.pk).update(kind="coldchain.event")
    with pytest.raises(IntegrityError), transaction.atomic():
        NotarizedDocument.objects.filter(pk=document.pk).delete()


@pytest.mark.django_db(transaction=True)
def test_concurrent_notarizations_of_one_digest_make_one_record_and_all_get_it():
    if connection.vendor != "postgresql":
        pytest.skip("a real race needs PostgreSQL")
    # given
    start = threading.Barrier(6)
    results, failures = [], []

    def notarize_once(i):
        try:
            start.wait()
            with transaction.atomic():
                results.append(services.notarize(digest=sha("race"), kind="coldchain.event", reference=f"r{i}").pk)
        except Exception as error:  # noqa: BLE001  (reported by the assertion below)
            failures.append(error)
        finally:
            connections.close_all()

    # when
    threads = [threading.Thread(target=notarize_once, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    # then
    assert failures == []
    assert NotarizedDocument.objects.count() == 1
    assert set(results) == {NotarizedDocument.objects.get().pk}
